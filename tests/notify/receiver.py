"""A webhook receiver on a loopback port: records every request, answers as told."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """``status`` is the answer to give; with ``stall`` set, requests are read and recorded
    but not answered until the event is set (a receiver that got the request and then the
    sender died)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 204
    stall: threading.Event | None = None
    got_one: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            target = state[0]
            target.requests.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            target.got_one.set()
            if target.stall is not None:
                target.stall.wait(timeout=30)
            self.send_response(target.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.append(Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state[0]
    if state[0].stall is not None:
        state[0].stall.set()
    server.shutdown()
    server.server_close()
