"""Webhook URLs carry secrets (userinfo, Slack/Teams paths, query keys): a failed delivery keeps
none of them in the outbox, the log, the finding, the API or the console a viewer sees."""

from __future__ import annotations

import logging
import socket

import pytest
from sqlalchemy import select, update

from adesync.health import evaluate
from adesync.notify.deliver import deliver_due
from adesync.notify.outbox import Queued, enqueue
from adesync.notify.settings import NotifySettings
from adesync.store.tables_health import notify_outbox
from adesync.web import accounts
from adesync.web.roles import Role
from tests.health.factory import NOW, add_token, beat
from tests.web.conftest import PASSWORD, Web
from tests.web.test_console import csrf_of

SECRETS = ("PASSWORD9", "T0SECRET", "B0PATH", "QKEY7")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_failed_delivery_shows_and_stores_only_scheme_host_and_port(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    port = _free_port()
    url = f"http://hook:PASSWORD9@127.0.0.1:{port}/services/T0SECRET/B0PATH?key=QKEY7"
    settings = NotifySettings(webhook_url=url, webhook_secret="s", max_attempts=1)
    await add_token(web.db)
    await beat(web.db, NOW)
    async with web.db.write() as session:
        await enqueue(session, [Queued("webhook", "test", "k1", "{}")], NOW)
        # A row failed before errors were redacted: read back redacted too.
        await enqueue(session, [Queued("webhook", "test", "k0", "{}")], NOW)
        await session.execute(
            update(notify_outbox)
            .where(notify_outbox.c.dedup_key == "k0")
            .values(status="failed", attempts=5, last_attempt_at=NOW, last_error=f"POST {url} x")
        )
    with caplog.at_level(logging.WARNING, logger="adesync.notify"):
        done = await deliver_due(web.db, settings=settings, now=NOW)
    assert done.failed == 1
    async with web.db.read() as session:
        stored = (
            await session.execute(
                select(notify_outbox.c.last_error).where(notify_outbox.c.dedup_key == "k1")
            )
        ).scalar_one()
    assert stored.startswith(f"POST http://127.0.0.1:{port} failed: ConnectError")
    await evaluate(web.db, now=NOW)
    api = await web.client.get("/api/v1/health", headers=web.as_role(Role.VIEWER))
    assert api.status_code == 200 and "notifications_failing" in api.text
    await accounts.add_user(web.db, "val", Role.VIEWER, actor="test", password=PASSWORD)
    login = await web.client.get("/login")
    await web.client.post(
        "/login", data={"username": "val", "password": PASSWORD, "csrf_token": csrf_of(login.text)}
    )
    console = await web.client.get("/health")
    assert f"http://127.0.0.1:{port}" in console.text
    for text in (stored, caplog.text, api.text, console.text):
        assert not any(secret in text for secret in SECRETS), text
