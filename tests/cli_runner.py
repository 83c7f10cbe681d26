"""Run the CLI in-process the way a user runs it, capturing stdout, stderr and the exit code."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest

from adesync.cli import run_cli


@dataclass
class Result:
    code: int
    out: str
    err: str


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """Run ``adesync ARGS``; from inside a running event loop it runs on a thread."""
    capsys.readouterr()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        code = run_cli(list(args))
    else:
        box: list[int] = []
        thread = threading.Thread(target=lambda: box.append(run_cli(list(args))))
        thread.start()
        thread.join()
        code = box[0]
    captured = capsys.readouterr()
    return Result(code=code, out=captured.out, err=captured.err)
