"""What every command shares: running coroutines, JSON output and the consoles."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from rich.console import Console

T = TypeVar("T")

out = Console()
err = Console(stderr=True, soft_wrap=True)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(Exception):
    """SIGINT or SIGTERM stopped a command: its coroutine was cancelled and what it had under
    way recorded itself as it unwound (a sync run as ``interrupted``). The CLI prints
    ``message`` and exits with ``128 + signum`` (130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, signum: int, message: str | None = None) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(message or f"Stopped by {self.signal_name}.")

    @property
    def message(self) -> str:
        return str(self.args[0])

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine on a fresh event loop (one loop per CLI process). SIGINT and SIGTERM
    cancel it, and once it has unwound inside the loop it raises :class:`Stopped` (a command
    that installs its own handlers, such as ``worker``, replaces these)."""
    return asyncio.run(_until_stopped(coro))


async def _until_stopped(coro: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        if task is not None:
            task.cancel()  # a second signal cancels what the first one's unwinding waits for

    handled = threading.current_thread() is threading.main_thread()  # not in a test's thread
    if handled:
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await coro
    except asyncio.CancelledError:
        if received:
            raise Stopped(received[0]) from None
        raise
    finally:
        if handled:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)


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
