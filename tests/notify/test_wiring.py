"""The application's wiring end to end: a real scheduler evaluates every token under its lease,
the transition goes into the outbox in that transaction, and the scheduler delivers it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from adesync import wiring
from adesync.config import load_settings
from adesync.notify.signing import verify
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_health import notify_outbox
from adesync.store.types import utcnow
from adesync.sync.scheduler import Scheduler
from tests.conftest import Home
from tests.health.factory import add_token
from tests.notify.receiver import Receiver


async def test_the_scheduler_evaluates_announces_and_delivers(
    home: Home, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADESYNC_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("ADESYNC_WEBHOOK_SECRET", "wired")
    now = utcnow()
    db = Database(home.db_url)
    try:
        # Expired, and not due for a sync (nothing may reach Apple from a test).
        await add_token(
            db,
            "lab",
            access_token_expiry=now - timedelta(days=1),
            next_sync_at=now + timedelta(days=1),
            last_successful_sync_at=now - timedelta(minutes=1),
        )
        wiring.install()
        scheduler = Scheduler(db, home.box, load_settings(), concurrency=1)
        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.run(stop))
        try:
            assert await asyncio.to_thread(receiver.got_one.wait, 60)
            for _ in range(600):  # until the delivery is recorded (the loop keeps running)
                async with db.read() as session:
                    sent = (await session.execute(select(notify_outbox.c.status))).scalars()
                    if list(sent) == ["sent"]:
                        break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the delivery was never recorded as sent")
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=30)
        request = receiver.requests[0]
        assert verify(b"wired", request.headers["x-adesync-signature"], request.body)
        document = json.loads(request.body)
        assert document["event"] == "token.state_changed"
        assert (document["token"]["name"], document["state"]) == ("lab", "error")
        assert document["added"] == ["token_expired"]
        async with db.read() as session:
            state = (await session.execute(select(tokens.c.state, tokens.c.state_reason))).one()
        assert tuple(state) == ("error", "token_expired")
    finally:
        await db.dispose()
