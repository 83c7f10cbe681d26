from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from adesync.commands.admin import initialise
from adesync.config import Settings
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


def test_worker_sockets_share_one_port() -> None:
    from adesync.web.runner import _port_socket

    first = _port_socket("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        second = _port_socket("127.0.0.1", port)
        second.close()
    finally:
        first.close()


@pytest.mark.skipif(sys.platform != "linux", reason="one SO_REUSEPORT socket per worker: Linux")
def test_serve_workers_listen_on_sockets_of_their_own_and_stop_on_sigterm(tmp_path: Path) -> None:
    asyncio.run(initialise(Settings(home=tmp_path)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ADESYNC_HOME": str(tmp_path), "ADESYNC_LOG_LEVEL": "WARNING"}
    env.pop("ADESYNC_DATABASE_URL", None)
    command = ["serve", "--no-scheduler", "--workers", "2", "--port", str(port)]
    server = subprocess.Popen(
        [sys.executable, "-m", "adesync.cli", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Distinct sockets on one port: the kernel, not a race to accept, spreads connections.
        workers = _listening_sockets(server.pid, port)
        assert len(workers) == 2 and len(set.union(*workers.values())) == 2, workers
        for _ in range(10):  # each on a new connection
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err.decode()
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]  # no orphan left


def _listening_sockets(parent: int, port: int, timeout: float = 60) -> dict[int, set[str]]:
    """The listening sockets on ``port`` of each child of ``parent``, once two children have
    one (or whatever there is after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    found: dict[int, set[str]] = {}
    while time.monotonic() < deadline:
        listening = _listening_inodes(port)
        found = {}
        for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
            try:
                links = {str(fd.readlink()) for fd in Path(f"/proc/{child}/fd").iterdir()}
            except FileNotFoundError:
                continue
            if links & listening:
                found[int(child)] = links & listening
        if len(found) >= 2:
            return found
        time.sleep(0.2)
    return found


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
            inodes.add(f"socket:[{fields[9]}]")
    return inodes
