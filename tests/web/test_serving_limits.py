"""The serving limits of ``adesync serve`` (one process and ``--workers 2``), through real HTTP:
header size, the deadline for a request's head, and the concurrency limit."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adesync.commands.admin import initialise
from adesync.config import Settings

HEADER_TIMEOUT = 1.5
LIMIT_CONCURRENCY = 4


@dataclass
class Served:
    server: subprocess.Popen[bytes]
    port: int
    workers: int

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def rss_kib(self) -> int:
        """Resident memory of the serve process and its workers."""
        pids = [self.server.pid]
        children = Path(f"/proc/{self.server.pid}/task/{self.server.pid}/children")
        pids += [int(pid) for pid in children.read_text().split()]
        total = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total


def _answer(connection: socket.socket) -> bytes:
    """What the server sends until it closes the connection or 10 s pass."""
    answer = b""
    try:
        while chunk := connection.recv(65536):
            answer += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return answer


def _get(connection: socket.socket, path: str = "/healthz", head: bytes | None = None) -> int:
    """The status of one GET on a keep-alive connection (its body read whole); ``head``: what
    to send instead of the request line and headers (ended here by an empty line)."""
    if head is None:
        head = f"GET {path} HTTP/1.1\r\nHost: t\r\n".encode()
    connection.sendall(head + b"\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = connection.recv(4096)
        assert chunk, f"the server closed the connection: {answer!r}"
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = connection.recv(4096)
        assert chunk, f"the server closed the connection: {answer!r}"
        body += chunk
    return int(head.split(b" ", 2)[1])


def _wait_until_served(served: Served) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert served.server.poll() is None, "serve exited"
        try:
            with served.connect() as connection:
                if _get(connection) == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, "serve did not start"
        time.sleep(0.2)


@pytest.fixture(scope="module", params=[1, 2], ids=["serve", "serve-workers-2"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    workers: int = request.param
    if workers > 1 and sys.platform != "linux":
        pytest.skip("the memory checks read /proc")
    home = tmp_path_factory.mktemp("serving-limits")
    asyncio.run(initialise(Settings(home=home)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "ADESYNC_HOME": str(home),
        "ADESYNC_LOG_LEVEL": "WARNING",
        "ADESYNC_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "ADESYNC_LIMIT_CONCURRENCY": str(LIMIT_CONCURRENCY),
    }
    env.pop("ADESYNC_DATABASE_URL", None)
    env.pop("ADESYNC_HEADER_MAX_BYTES", None)  # the default, 16 KiB
    command = ["serve", "--no-scheduler", "--workers", str(workers), "--port", str(port)]
    server = subprocess.Popen(
        [sys.executable, "-m", "adesync.cli", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    served = Served(server, port, workers)
    try:
        _wait_until_served(served)
        yield served
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_a_17_kib_header_is_refused_and_the_connection_closed(served: Served) -> None:
    with served.connect() as connection:
        started = time.monotonic()
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 17 * 1024)
        connection.sendall(b"\r\n\r\n")
        answer = _answer(connection)
        waited = time.monotonic() - started
    # h11 answers 400 (uvicorn's "Invalid HTTP request received.") and closes; at once, not
    # when the header timeout runs out.
    assert answer == b"" or answer.split(b" ", 2)[1] in (b"400", b"431"), answer[:200]
    assert waited < HEADER_TIMEOUT / 2, waited
    with served.connect() as connection:  # and serves on
        assert _get(connection) == 200


def test_a_15_kib_header_is_served(served: Served) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 15 * 1024 + b"\r\n"
    with served.connect() as connection:
        assert _get(connection, head=head) == 200


def test_a_huge_header_is_refused_early_and_the_server_does_not_grow(served: Served) -> None:
    before = served.rss_kib()
    sent = 0
    refused = False
    piece = b"a" * 64 * 1024
    with served.connect() as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Huge: ")
        while sent < 2 * 1024 * 1024:
            try:
                connection.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                refused = True
                break
            sent += len(piece)
            if select.select([connection], [], [], 0.05)[0]:
                refused = True
                break
        answer = _answer(connection) if refused else b""
    assert refused, "2 MB of header were taken without an answer"
    assert sent <= 512 * 1024, f"refused only after {sent} bytes"
    assert answer == b"" or answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), answer[:200]
    assert served.rss_kib() - before < 1024, "the server grew by a megabyte or more"


def test_a_request_line_that_stalls_is_disconnected_within_the_header_timeout(
    served: Served,
) -> None:
    with served.connect() as connection:
        started = time.monotonic()
        connection.sendall(b"GET /healthz HTT")
        answer = _answer(connection)
        waited = time.monotonic() - started
    assert answer == b""
    assert HEADER_TIMEOUT - 0.2 <= waited < HEADER_TIMEOUT + 3, waited


def test_headers_trickled_after_an_answer_are_disconnected_within_the_header_timeout(
    served: Served,
) -> None:
    # uvicorn's keep-alive timeout starts over with every byte received; this deadline does not.
    with served.connect() as connection:
        assert _get(connection) == 200
        started = time.monotonic()
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100:
            try:
                connection.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if select.select([connection], [], [], 0.25)[0]:
                closed = connection.recv(1) == b""
                break
        waited = time.monotonic() - started
    assert closed, "headers trickled for 25 s"
    assert waited < HEADER_TIMEOUT + 3, waited


def test_a_slow_request_in_the_app_is_not_cut_by_the_header_timeout(served: Served) -> None:
    # Several keep-alive requests over longer than the timeout: the clock runs only for heads.
    with served.connect() as connection:
        for _ in range(4):
            assert _get(connection) == 200
            time.sleep(HEADER_TIMEOUT / 3)


def test_connections_over_the_concurrency_limit_are_answered_503(served: Served) -> None:
    connections = []
    statuses = []
    try:
        # uvicorn counts per process, the connection asking included.
        for _ in range(3 * LIMIT_CONCURRENCY * served.workers):
            connection = served.connect()
            connections.append(connection)
            statuses.append(_get(connection))
    finally:
        for connection in connections:
            connection.close()
    assert statuses[0] == 200
    assert statuses.count(200) <= (LIMIT_CONCURRENCY - 1) * served.workers, statuses
    assert set(statuses) == {200, 503}, statuses
    deadline = time.monotonic() + 10
    while True:  # the connections closed, new ones are served again
        with served.connect() as connection:
            if _get(connection) == 200:
                break
        assert time.monotonic() < deadline
        time.sleep(0.1)
