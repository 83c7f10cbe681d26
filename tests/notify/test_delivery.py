"""Delivering the outbox for real: a loopback webhook receiver, a local SMTP server (aiosmtpd),
retries and giving up, and at-least-once delivery across a killed process."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from adesync.health import evaluate
from adesync.notify.deliver import deliver_due
from adesync.notify.events import dumps, email_text, ping_event
from adesync.notify.outbox import Queued, enqueue, retry_failed
from adesync.notify.settings import NotifySettings
from adesync.notify.signing import verify
from adesync.store.database import Database
from adesync.store.tables_health import notify_outbox
from adesync.store.types import utcnow
from tests.conftest import Home
from tests.health.factory import NOW, add_token, beat
from tests.notify.receiver import Receiver

SECRET = "receiver-shared-secret"


def webhook_settings(receiver: Receiver, **extra: Any) -> NotifySettings:
    return NotifySettings(webhook_url=receiver.url, webhook_secret=SECRET, **extra)


async def queue(db: Database, *items: Queued) -> None:
    async with db.write() as session:
        await enqueue(session, list(items), NOW)


async def rows(db: Database) -> list[Any]:
    async with db.read() as session:
        return list(await session.execute(select(notify_outbox).order_by(notify_outbox.c.id)))


def hook(key: str = "k1", body: str = '{"event":"test"}') -> Queued:
    return Queued("webhook", "test", key, body)


async def test_a_webhook_is_signed_and_marked_sent(db: Database, receiver: Receiver) -> None:
    await queue(db, hook())
    done = await deliver_due(db, settings=webhook_settings(receiver), now=NOW)
    assert (done.sent, done.retrying, done.failed) == (1, 0, 0)
    (request,) = receiver.requests
    (row,) = await rows(db)
    assert request.body == b'{"event":"test"}'
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-adesync-event"] == "test"
    assert request.headers["x-adesync-delivery"] == str(row.id)
    assert verify(SECRET.encode(), request.headers["x-adesync-signature"], request.body)
    assert (row.status, row.attempts, row.delivered_at) == ("sent", 1, NOW)
    # Nothing is due any more.
    assert (await deliver_due(db, settings=webhook_settings(receiver), now=NOW)).sent == 0


async def test_the_same_event_queued_twice_is_sent_once(db: Database, receiver: Receiver) -> None:
    await queue(db, hook("same"), hook("same"))
    await queue(db, hook("same"))
    await deliver_due(db, settings=webhook_settings(receiver), now=NOW)
    assert len(receiver.requests) == 1


async def test_failures_are_retried_with_backoff_then_given_up(
    db: Database, receiver: Receiver
) -> None:
    await add_token(db)
    await beat(db, NOW + timedelta(hours=1))
    receiver.status = 500
    settings = webhook_settings(receiver, max_attempts=3)
    await queue(db, hook())
    done = await deliver_due(db, settings=settings, now=NOW)
    assert (done.sent, done.retrying) == (0, 1)
    (row,) = await rows(db)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == NOW + timedelta(seconds=30)
    assert "HTTP 500" in row.last_error
    assert (await deliver_due(db, settings=settings, now=NOW + timedelta(seconds=10))).retrying == 0
    later = NOW + timedelta(seconds=31)
    await deliver_due(db, settings=settings, now=later)
    (row,) = await rows(db)
    assert (row.attempts, row.next_attempt_at) == (2, later + timedelta(seconds=60))
    assert (await evaluate(db, now=later)).installation == ()  # two failures: not yet news
    done = await deliver_due(db, settings=settings, now=later + timedelta(minutes=2))
    assert done.failed == 1
    (row,) = await rows(db)
    assert row.status == "failed"
    assert len(receiver.requests) == 3
    # Visible in diagnose's findings once given up (and while a third try is pending).
    health = await evaluate(db, now=later + timedelta(minutes=3))
    (seen,) = health.installation
    assert seen.finding.code == "notifications_failing"
    assert "HTTP 500" in str(seen.finding.data["last_error"])
    # Fixed receiver, requeued by hand: delivered.
    receiver.status = 200
    assert await retry_failed(db, later + timedelta(minutes=3)) == 1
    done = await deliver_due(db, settings=settings, now=later + timedelta(minutes=3))
    assert done.sent == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_receiver_is_a_retried_failure(db: Database) -> None:
    settings = NotifySettings(
        webhook_url=f"http://127.0.0.1:{free_port()}/hook", webhook_secret=SECRET
    )
    await queue(db, hook())
    assert (await deliver_due(db, settings=settings, now=NOW)).retrying == 1
    (row,) = await rows(db)
    assert "ConnectError" in row.last_error


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def mail_settings(port: int, **extra: Any) -> NotifySettings:
    return NotifySettings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        email_from="adesync@example.org",
        email_to=["it@example.org", "ops@example.org"],
        **extra,
    )


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
async def test_email_goes_through_a_local_smtp_server(
    db: Database, mailbox: tuple[Mailbox, int], lang: str
) -> None:
    box, port = mailbox
    subject, text = email_text(ping_event(NOW, lang))
    await queue(db, Queued("email", "test", "t1", dumps({"subject": subject, "text": text})))
    done = await deliver_due(db, settings=mail_settings(port), now=NOW)
    assert done.sent == 1
    (message,) = box.messages
    assert box.envelopes == [("adesync@example.org", ["it@example.org", "ops@example.org"])]
    assert message["Subject"] == subject
    assert message.get_content().strip() == text.strip()
    assert ("测试通知" in subject) == (lang == "zh-CN")


async def test_a_refused_smtp_connection_is_retried(db: Database) -> None:
    await queue(db, Queued("email", "test", "t1", dumps({"subject": "s", "text": "t"})))
    done = await deliver_due(db, settings=mail_settings(free_port()), now=NOW)
    assert done.retrying == 1
    (row,) = await rows(db)
    assert "SMTP delivery through 127.0.0.1" in row.last_error


def run_deliver(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "adesync.cli", "notify", "deliver"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def test_delivery_is_at_least_once_across_a_killed_process(
    home: Home, receiver: Receiver
) -> None:
    db = Database(home.db_url)
    try:
        # Real time here: the child processes run on the real clock.
        async with db.write() as session:
            await enqueue(session, [hook("survives", '{"event":"test","n":1}')], utcnow())
        env = {**os.environ, "ADESYNC_WEBHOOK_URL": receiver.url, "ADESYNC_WEBHOOK_SECRET": SECRET}
        receiver.stall = threading.Event()
        first = run_deliver(env)
        # The receiver has the request, but the sender dies before hearing the answer.
        assert await asyncio.to_thread(receiver.got_one.wait, 30)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        (row,) = await rows(db)
        assert (row.status, row.attempts) == ("pending", 0)
        assert row.claimed_until is not None
        # The claim of the dead process runs out (moved back instead of waiting a minute).
        async with db.write() as session:
            await session.execute(
                update(notify_outbox).values(claimed_until=utcnow() - timedelta(minutes=1))
            )
        receiver.stall.set()
        second = run_deliver(env)
        stdout, stderr = second.communicate(timeout=60)
        assert second.returncode == 0, stderr.decode()
        assert b"sent 1" in stdout
        first_try, second_try = receiver.requests
        assert first_try.body == second_try.body == b'{"event":"test","n":1}'
        delivery = first_try.headers["x-adesync-delivery"]
        assert second_try.headers["x-adesync-delivery"] == delivery  # receivers de-duplicate
        (row,) = await rows(db)
        assert row.status == "sent"
    finally:
        await db.dispose()


async def test_no_channel_means_nothing_is_sent(db: Database) -> None:
    await queue(db, hook())
    done = await deliver_due(db, settings=NotifySettings(), now=NOW)
    assert done.retrying == 1
    (row,) = await rows(db)
    assert "no longer configured" in row.last_error
