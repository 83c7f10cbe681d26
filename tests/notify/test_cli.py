"""``adesync notify status|test|retry`` as an operator runs them."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert

from adesync.store.database import Database
from adesync.store.tables_health import notify_outbox
from adesync.store.types import utcnow
from tests.cli_runner import invoke
from tests.conftest import Home
from tests.notify.receiver import Receiver


def test_test_sends_on_the_webhook_and_status_shows_it(
    home: Home,
    receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADESYNC_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("ADESYNC_WEBHOOK_SECRET", "s")
    result = invoke(capsys, "notify", "test")
    assert result.code == 0, result.err
    assert "sent 1" in result.out
    (request,) = receiver.requests
    assert json.loads(request.body)["event"] == "test"
    status = json.loads(invoke(capsys, "notify", "status", "--json").out)
    assert status["channels"] == ["webhook"]
    assert status["queued"] == [{"channel": "webhook", "status": "sent", "count": 1}]


def test_a_failing_receiver_is_reported(
    home: Home,
    receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADESYNC_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("ADESYNC_WEBHOOK_SECRET", "s")
    receiver.status = 503
    result = invoke(capsys, "notify", "test")
    assert result.code == 1
    assert "notify status" in result.err
    status = json.loads(invoke(capsys, "notify", "status", "--json").out)
    (recent,) = status["recent"]
    assert recent["status"] == "pending" and "HTTP 503" in recent["last_error"]


def test_test_without_a_channel_is_one_clear_error(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, "notify", "test")
    assert result.code == 1
    assert "No notification channel is configured" in result.err
    assert len(result.err.strip().splitlines()) == 1


async def test_retry_requeues_given_up_notifications(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    db = Database(home.db_url)
    try:
        async with db.write() as session:
            await session.execute(
                insert(notify_outbox).values(
                    channel="webhook",
                    event="test",
                    dedup_key="k",
                    payload="{}",
                    status="failed",
                    attempts=10,
                    created_at=utcnow(),
                    next_attempt_at=utcnow(),
                )
            )
    finally:
        await db.dispose()
    result = invoke(capsys, "notify", "retry")
    assert result.code == 0
    assert "1 notification(s) queued again" in result.out


def test_a_bad_setting_is_one_sentence(
    home: Home, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADESYNC_WEBHOOK_URL", "https://hooks.example.org/x")
    result = invoke(capsys, "notify", "status")
    assert result.code == 1
    assert "ADESYNC_WEBHOOK_SECRET" in result.err
