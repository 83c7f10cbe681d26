"""Test barriers: named points where a process pauses when a test asks it to.

A race (a command started while ``secrets rotate`` is inside its transaction, a kill between a
commit and what follows it) is made deterministic by pausing the process at the window instead
of retrying until the timing happens to fall there. With ``ADESYNC_TEST_PAUSE`` naming the
barrier (a comma list) and ``ADESYNC_TEST_PAUSE_DIR`` a directory, ``await pause(NAME)`` writes
``DIR/NAME.reached`` and waits until ``DIR/NAME.go`` exists; otherwise it returns at once.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

__all__ = ["pause"]

_POLL_SECONDS = 0.02
_MAX_WAIT_SECONDS = 300.0  # a forgotten barrier ends the wait instead of hanging a test run


async def pause(name: str) -> None:
    """Wait at barrier ``name`` if the environment asks for it (tests only)."""
    names = os.environ.get("ADESYNC_TEST_PAUSE", "")
    folder = os.environ.get("ADESYNC_TEST_PAUSE_DIR")
    if not folder or name not in {n.strip() for n in names.split(",")}:
        return
    directory = Path(folder)
    (directory / f"{name}.reached").touch()
    go = directory / f"{name}.go"
    waited = 0.0
    while not go.exists() and waited < _MAX_WAIT_SECONDS:
        await asyncio.sleep(_POLL_SECONDS)
        waited += _POLL_SECONDS
