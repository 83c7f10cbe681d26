from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.cli_runner import invoke


def test_serve_without_a_database_says_to_run_init(capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(capsys, "serve", "--port", "1")
    assert result.code != 0 and "adesync init" in result.err
    assert "Traceback" not in result.err


def test_demo_on_a_busy_port_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke(capsys, "demo", "--home", str(tmp_path / "d"), "--port", str(port))
    assert result.code != 0
    assert f"Port {port}" in result.err and "--port" in result.err
