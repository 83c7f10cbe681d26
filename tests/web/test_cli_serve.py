from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from adesync.commands.admin import initialise
from adesync.config import Settings
from tests.cli_runner import invoke
from tests.conftest import Home


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


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_busy_port_is_one_clear_error(
    home: Home, workers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke(capsys, "serve", "--workers", workers, "--port", str(port))
    assert result.code == 1
    assert (
        result.err.strip()
        == f"error: Port {port} on 127.0.0.1 is in use; pass another one with --port."
    )
    assert "console at" not in result.out  # nothing announced that is not served


def _start_serve(tmp_path: Path, workers: int = 2) -> tuple[subprocess.Popen[bytes], int]:
    asyncio.run(initialise(Settings(home=tmp_path)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ADESYNC_HOME": str(tmp_path), "ADESYNC_LOG_LEVEL": "WARNING"}
    env.pop("ADESYNC_DATABASE_URL", None)
    command = ["serve", "--no-scheduler", "--workers", str(workers), "--port", str(port)]
    server = subprocess.Popen(
        [sys.executable, "-m", "adesync.cli", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return server, port


def _healthz(connection: socket.socket) -> None:
    """GET /healthz on an open keep-alive connection; the answer must be 200."""
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
        chunk = connection.recv(4096)
        assert chunk, "the server closed the connection"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer


def _open_connections(port: int, count: int, timeout: float = 60) -> list[socket.socket]:
    """``count`` keep-alive connections, each answered once (waits for the workers to start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as first:
                _healthz(first)
            break
        except OSError:
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
    connections = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    for connection in connections:
        _healthz(connection)
    return connections


def _workers(parent: int) -> set[int]:
    """The serve workers among ``parent``'s children (multiprocessing adds a resource tracker)."""
    workers = set()
    for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"resource_tracker" not in command:
            workers.add(int(child))
    return workers


def _connections_per_worker(parent: int, port: int) -> dict[int, int]:
    """How many established connections to ``port`` each child of ``parent`` holds."""
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
            established.add(f"socket:[{fields[9]}]")
    held = {}
    for child in _workers(parent):
        try:
            links = {str(fd.readlink()) for fd in Path(f"/proc/{child}/fd").iterdir()}
        except FileNotFoundError:
            continue
        held[child] = len(links & established)
    return held


@dataclass
class Serving:
    server: subprocess.Popen[bytes]
    port: int
    connections: list[socket.socket] = field(default_factory=list)
    err: bytes = b""


@contextmanager
def _serving(tmp_path: Path) -> Iterator[Serving]:
    """``serve --workers 2``; at the end its connections closed and SIGTERM, which must stop
    it cleanly (its standard error is kept in ``err``)."""
    server, port = _start_serve(tmp_path)
    serving = Serving(server, port)
    try:
        yield serving
    finally:
        for connection in serving.connections:
            connection.close()
        server.send_signal(signal.SIGTERM)
        _, serving.err = server.communicate(timeout=30)
    assert server.returncode == 0, serving.err.decode()


@pytest.mark.skipif(sys.platform != "linux", reason="connections handed over Unix sockets")
def test_serve_workers_take_connections_in_turn_and_stop_on_sigterm(tmp_path: Path) -> None:
    with _serving(tmp_path) as serving:
        serving.connections = _open_connections(serving.port, 10)
        held = _connections_per_worker(serving.server.pid, serving.port)
        # The supervisor hands connections to the two workers in turn: 5 each, not a hash's
        # 7/3 or a race's 10/0.
        assert sorted(held.values()) == [5, 5], held
        for connection in serving.connections:  # still served, on the same connections
            _healthz(connection)
    assert not [pid for pid in held if Path(f"/proc/{pid}").exists()]  # no orphan left


@pytest.mark.skipif(sys.platform != "linux", reason="connections handed over Unix sockets")
def test_a_killed_worker_is_replaced_and_connections_go_on(tmp_path: Path) -> None:
    with _serving(tmp_path) as serving:
        serving.connections = _open_connections(serving.port, 4)
        victim = min(_connections_per_worker(serving.server.pid, serving.port))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while len(workers := _workers(serving.server.pid)) != 2 or victim in workers:
            assert time.monotonic() < deadline, workers
            time.sleep(0.2)
        # New connections reach both workers again, the new one included.
        for connection in serving.connections:
            connection.close()
        serving.connections = _open_connections(serving.port, 4)
        held = _connections_per_worker(serving.server.pid, serving.port)
        assert victim not in held and all(n >= 1 for n in held.values()), held
    assert b"replacing it" in serving.err
