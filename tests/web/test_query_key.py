"""``?key=`` on the ingest webhooks: an ingest key only, and never in the access log, through
a real uvicorn server on a loopback port."""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx
import uvicorn

from adesync.web.access_log import ACCESS_LOGGER
from adesync.web.roles import Role
from tests.web.conftest import Web

NANO = "/api/v1/webhooks/nanomdm"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_query_keys_are_ingest_keys_and_never_logged(web: Web) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        # The web fixture already started the app; uvicorn only serves it (with its access log).
        server = uvicorn.Server(uvicorn.Config(web.app, lifespan="off", access_log=True))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        seen = Lines()
        logging.getLogger(ACCESS_LOGGER).addHandler(seen)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                admin = await client.post(f"{NANO}?key={web.keys[Role.ADMIN]}", content=b"{}")
                ingest = await client.post(f"{NANO}?a=1&key={web.keys[Role.INGEST]}", content=b"{}")
                header = await client.post(NANO, content=b"{}", headers=web.as_role(Role.ADMIN))
        finally:
            logging.getLogger(ACCESS_LOGGER).removeHandler(seen)
            server.should_exit = True
            await serving
    assert admin.status_code == 403 and "ingest key only" in admin.json()["detail"]
    assert ingest.status_code != 403 and header.status_code != 403  # past the key check
    assert len(seen.lines) == 3, seen.lines
    for line in seen.lines:
        assert web.keys[Role.ADMIN] not in line and web.keys[Role.INGEST] not in line
    assert "key=[redacted]" in seen.lines[0] and "a=1&key=[redacted]" in seen.lines[1]
