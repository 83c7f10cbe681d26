"""What goes into the outbox: transitions (in health's transaction), expiry reminders at 30,
14, 7 and 1 days, devices.synced pages; and what the receiver gets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from adesync.health import ON_TRANSITION, evaluate
from adesync.notify.deliver import deliver_due
from adesync.notify.jobs import enqueue_device_page, enqueue_transitions, send_expiry_reminders
from adesync.notify.settings import load_notify_settings
from adesync.notify.signing import verify
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_health import notify_outbox
from adesync.sync.model import APPLE_DEVICE_FIELDS, DeviceRecord
from tests.health.factory import NOW, add_token, beat
from tests.notify.receiver import Receiver


@pytest.fixture
def channels(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Receiver:
    """Webhook and e-mail configured through the environment (e-mail is only queued)."""
    monkeypatch.setenv("ADESYNC_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("ADESYNC_WEBHOOK_SECRET", "s")
    monkeypatch.setenv("ADESYNC_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ADESYNC_EMAIL_FROM", "adesync@example.org")
    monkeypatch.setenv("ADESYNC_EMAIL_TO", "it@example.org")
    return receiver


@pytest.fixture
def announcing() -> Iterator[None]:
    """Transitions go to the outbox, as wiring.install() arranges in the application."""
    ON_TRANSITION.append(enqueue_transitions)
    yield
    ON_TRANSITION.remove(enqueue_transitions)


async def outbox(db: Database) -> list[Any]:
    async with db.read() as session:
        return list(await session.execute(select(notify_outbox).order_by(notify_outbox.c.id)))


async def test_a_transition_is_queued_once_per_channel(
    db: Database, channels: Receiver, announcing: None
) -> None:
    await add_token(db, "lab", access_token_expiry=NOW - timedelta(days=2), org_name="Lab School")
    await beat(db, NOW)
    await evaluate(db, now=NOW)
    rows = await outbox(db)
    assert sorted(r.channel for r in rows) == ["email", "webhook"]
    webhook = next(r for r in rows if r.channel == "webhook")
    document = json.loads(webhook.payload)
    assert document["event"] == "token.state_changed"
    assert (document["previous_state"], document["state"]) == (None, "error")
    assert document["token"]["org_name"] == "Lab School"
    assert document["added"] == ["token_expired"]
    assert document["findings"][0]["code"] == "token_expired"
    assert document["findings"][0]["remediation"]
    assert document["alert"]["affected_tokens"] == [
        {"name": "lab", "org_name": "Lab School", "state_reason": "token_expired"}
    ]
    mail = json.loads(next(r for r in rows if r.channel == "email").payload)
    assert mail["subject"] == "[adesync] lab (Lab School) is now error"
    assert 'upload it under "Renew: upload the new token (.p7m)"' in mail["text"]
    assert "adesync tokens renew" not in mail["text"]
    # Nothing changed: nothing new to say.
    await evaluate(db, now=NOW + timedelta(minutes=1))
    assert len(await outbox(db)) == 2
    # Delivered to the receiver, signed.
    await deliver_due(db, settings=load_notify_settings(), now=NOW + timedelta(minutes=1))
    (request,) = channels.requests
    assert json.loads(request.body)["id"] == document["id"]
    assert verify(b"s", request.headers["x-adesync-signature"], request.body)


async def test_a_fix_is_announced_too(db: Database, channels: Receiver, announcing: None) -> None:
    token_id = await add_token(db, "lab", terms_not_accepted=True)
    await beat(db, NOW)
    await evaluate(db, now=NOW)
    async with db.write() as session:
        await session.execute(
            update(tokens).where(tokens.c.id == token_id).values(terms_not_accepted=False)
        )
    await evaluate(db, now=NOW + timedelta(minutes=1))
    documents = [json.loads(r.payload) for r in await outbox(db) if r.channel == "webhook"]
    assert [(d["previous_state"], d["state"], d["cleared"]) for d in documents] == [
        (None, "error", []),
        ("error", "healthy", ["terms_not_accepted"]),
    ]
    assert documents[1]["findings"] == [] and documents[1]["alert"] is None


async def test_no_channel_no_rows(db: Database, announcing: None) -> None:
    await add_token(db, access_token_expiry=NOW - timedelta(days=2))
    await evaluate(db, now=NOW)
    assert await outbox(db) == []


async def test_chinese_notifications(
    db: Database, channels: Receiver, announcing: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADESYNC_LANG", "zh-CN")
    await add_token(db, "lab", terms_not_accepted=True, org_name="实验学校")
    await beat(db, NOW)
    await evaluate(db, now=NOW)
    mail = json.loads(next(r for r in await outbox(db) if r.channel == "email").payload)
    assert mail["subject"] == "[adesync] lab（实验学校）当前状态：错误"
    assert "一个或多个 ADE 令牌处于错误状态" in mail["text"]


@pytest.mark.parametrize(
    ("lang", "renew"),
    [("en", "Renew: upload the new token (.p7m)"), ("zh-CN", "续订：上传新令牌 (.p7m)")],
)
async def test_notifications_carry_the_consoles_steps_not_commands(
    db: Database,
    channels: Receiver,
    announcing: None,
    monkeypatch: pytest.MonkeyPatch,
    lang: str,
    renew: str,
) -> None:
    monkeypatch.setenv("ADESYNC_LANG", lang)
    await add_token(db, "lab", token_rejected=True)
    await evaluate(db, now=NOW)  # no heartbeat: scheduler_down, an operator's step, comes too
    rows = await outbox(db)
    webhooks = [json.loads(r.payload) for r in rows if r.channel == "webhook"]
    findings = {f["code"]: f for d in webhooks for f in d["findings"]}
    assert {"token_rejected", "scheduler_down"} <= set(findings)
    assert renew in findings["token_rejected"]["remediation"][0]
    operator = "Ask your operator" if lang == "en" else "请让运维人员"
    assert findings["scheduler_down"]["remediation"][0].startswith(operator)
    shell = re.compile(r"`|adesync (tokens|sync|serve|worker|notify)\b|\s--[a-z]")
    for document in webhooks:
        for finding in document["findings"]:
            for text in (finding["detail"], finding["actor"], *finding["remediation"]):
                assert not shell.search(text), text
        if document["alert"]:
            assert not shell.search(document["alert"]["text"])
    for row in rows:
        if row.channel == "email":
            assert not shell.search(json.loads(row.payload)["text"])


@pytest.mark.parametrize(
    ("left", "threshold"),
    [
        (timedelta(days=29), 30),
        (timedelta(days=10), 14),
        (timedelta(days=6, hours=23), 7),
        (timedelta(hours=20), 1),
    ],
)
async def test_expiry_reminders_at_30_14_7_and_1_days(
    db: Database, channels: Receiver, left: timedelta, threshold: int
) -> None:
    await add_token(db, "lab", access_token_expiry=NOW + left)
    assert await send_expiry_reminders(db, now=NOW) == 1
    assert await send_expiry_reminders(db, now=NOW + timedelta(minutes=1)) == 1
    rows = await outbox(db)
    assert len(rows) == 2  # one per channel, however often the job runs
    document = json.loads(next(r for r in rows if r.channel == "webhook").payload)
    assert document["event"] == "token.expiry_reminder"
    assert document["threshold_days"] == threshold


async def test_each_threshold_reminds_once(db: Database, channels: Receiver) -> None:
    await add_token(db, "lab", access_token_expiry=NOW + timedelta(days=40))
    assert await send_expiry_reminders(db, now=NOW) == 0
    for days in (10, 9, 8, 1):  # 30 passed while nothing ran: only the nearest, 14; then 1
        await send_expiry_reminders(db, now=NOW + timedelta(days=40 - days))
    webhook = [json.loads(r.payload) for r in await outbox(db) if r.channel == "webhook"]
    assert [d["threshold_days"] for d in webhook] == [14, 1]


async def test_device_pages_go_to_the_device_event_url(
    db: Database, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_id = await add_token(db, "lab")
    await enqueue_device_page(db, token_id, "sync", [DeviceRecord.from_fields("X", {})])
    assert await outbox(db) == []  # off unless configured
    monkeypatch.setenv("ADESYNC_DEVICE_EVENTS_URL", receiver.url)
    monkeypatch.setenv("ADESYNC_DEVICE_EVENTS_SECRET", "dev")
    records = [
        DeviceRecord.from_fields("C1", {"model": "iPad"}, "added", NOW),
        DeviceRecord.from_fields("C2", {"model": "iPad"}, "added", NOW),
        DeviceRecord.from_fields("C3", {"model": "Mac"}, "deleted", NOW),
    ]
    await enqueue_device_page(db, token_id, "sync", records)
    await deliver_due(db, settings=load_notify_settings())
    (request,) = receiver.requests
    assert request.headers["x-adesync-event"] == "devices.synced"
    assert verify(b"dev", request.headers["x-adesync-signature"], request.body)
    document = json.loads(request.body)
    assert document["token"]["name"] == "lab"
    assert (document["kind"], document["ops"]) == ("sync", {"added": 2, "deleted": 1})
    assert document["devices"][0] == {
        "serial_number": "C1",
        "op_type": "added",
        "op_date": "2030-06-01T12:00:00Z",
        **dict.fromkeys(APPLE_DEVICE_FIELDS),
        "model": "iPad",
    }
