"""The simulator as a process of its own, for the benchmarks (they import this beside them)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def simulator(seed: int) -> Iterator[str]:
    """Start ``adesync simulate`` on a free loopback port; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "adesync.cli", "simulate", "--port", "0", "--devices", "0",
         "--seed", str(seed), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        if "listening on" not in first:
            raise SystemExit(f"the simulator did not start: {first!r}")
        yield first.split()[4]
    finally:
        process.terminate()
        process.wait(timeout=30)
