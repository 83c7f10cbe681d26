"""What every command shares: running coroutines, JSON output and the consoles."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from rich.console import Console

T = TypeVar("T")

out = Console()
err = Console(stderr=True, soft_wrap=True)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine on a fresh event loop (one loop per CLI process)."""
    return asyncio.run(coro)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z``, to the second, as every listing prints timestamps."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def to_json(document: object) -> str:
    return json.dumps(document, default=_default, ensure_ascii=False, indent=2)


def print_json(document: object) -> None:
    """Write one JSON document to stdout and nothing else."""
    sys.stdout.write(to_json(document) + "\n")
    sys.stdout.flush()
