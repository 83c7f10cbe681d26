"""The persistent outbox: notifications are rows first and deliveries second.

An event is enqueued in the same transaction as what it announces; a deliverer claims due rows
for a while (so two processes never send one row at once), sends them and marks each sent
only after the receiver accepted it. A process that dies mid-delivery leaves its claim to
expire and the row is sent again: delivery is at least once, and receivers de-duplicate on
the delivery id. ``(channel, dedup_key)`` is unique, so enqueueing the same event twice sends
it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.redact import redact_urls
from adesync.store.database import Database
from adesync.store.tables_health import notify_outbox

__all__ = [
    "OutboxItem",
    "Queued",
    "claim_due",
    "enqueue",
    "mark_failed",
    "mark_sent",
    "outbox_summary",
    "prune_sent",
    "recent_items",
    "retry_failed",
]


@dataclass(frozen=True)
class Queued:
    """One notification to enqueue on one channel."""

    channel: str
    event: str
    dedup_key: str
    payload: str


@dataclass(frozen=True)
class OutboxItem:
    """A row of the outbox as a deliverer or a status listing sees it."""

    id: int
    channel: str
    event: str
    payload: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        channel=row.channel,
        event=row.event,
        payload=row.payload,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        # Rows stored before errors were redacted are redacted as they are read.
        last_error=None if row.last_error is None else redact_urls(row.last_error),
        delivered_at=row.delivered_at,
    )


async def enqueue(session: AsyncSession, items: Sequence[Queued], now: datetime) -> None:
    """Add ``items`` in the caller's transaction; one already queued (same channel and
    dedup key) is left as it is."""
    if not items:
        return
    # Each dialect's INSERT ... ON CONFLICT, imported for the database in use only.
    statement: Any
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(notify_outbox)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(notify_outbox)
    await session.execute(
        statement.on_conflict_do_nothing(
            index_elements=[notify_outbox.c.channel, notify_outbox.c.dedup_key]
        ),
        [
            {
                "channel": item.channel,
                "event": item.event,
                "dedup_key": item.dedup_key,
                "payload": item.payload,
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
            for item in items
        ],
    )


async def claim_due(
    db: Database, now: datetime, *, limit: int = 100, claim_for: timedelta
) -> list[OutboxItem]:
    """Claim up to ``limit`` pending rows that are due and not claimed by another process."""
    async with db.write() as session:
        query = (
            select(notify_outbox.c.id)
            .where(
                notify_outbox.c.status == "pending",
                notify_outbox.c.next_attempt_at <= now,
                or_(
                    notify_outbox.c.claimed_until.is_(None),
                    notify_outbox.c.claimed_until < now,
                ),
            )
            .order_by(notify_outbox.c.id)
            .limit(limit)
        )
        if db.is_postgresql:
            query = query.with_for_update(skip_locked=True)
        ids = list((await session.execute(query)).scalars())
        if not ids:
            return []
        await session.execute(
            update(notify_outbox)
            .where(notify_outbox.c.id.in_(ids))
            .values(claimed_until=now + claim_for)
        )
        rows = await session.execute(
            select(notify_outbox).where(notify_outbox.c.id.in_(ids)).order_by(notify_outbox.c.id)
        )
        return [_item(row) for row in rows]


async def mark_sent(db: Database, item_id: int, now: datetime) -> None:
    async with db.write() as session:
        await session.execute(
            update(notify_outbox)
            .where(notify_outbox.c.id == item_id)
            .values(
                status="sent",
                attempts=notify_outbox.c.attempts + 1,
                last_attempt_at=now,
                delivered_at=now,
                claimed_until=None,
                last_error=None,
            )
        )


async def mark_failed(
    db: Database, item: OutboxItem, error: str, now: datetime, retry_at: datetime | None
) -> None:
    """Record a failed attempt: retried at ``retry_at``, or given up (``failed``) if None."""
    async with db.write() as session:
        await session.execute(
            update(notify_outbox)
            .where(notify_outbox.c.id == item.id)
            .values(
                status="pending" if retry_at is not None else "failed",
                attempts=notify_outbox.c.attempts + 1,
                last_attempt_at=now,
                next_attempt_at=retry_at or now,
                claimed_until=None,
                last_error=redact_urls(error)[:1000],
            )
        )


async def retry_failed(db: Database, now: datetime) -> int:
    """Queue every given-up row again, with a fresh set of attempts; returns how many."""
    async with db.write() as session:
        result = await session.execute(
            update(notify_outbox)
            .where(notify_outbox.c.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=now, claimed_until=None)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


async def prune_sent(db: Database, before: datetime) -> int:
    """Forget rows delivered before ``before``; returns how many."""
    async with db.write() as session:
        result = await session.execute(
            delete(notify_outbox).where(
                notify_outbox.c.status == "sent", notify_outbox.c.delivered_at < before
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


async def outbox_summary(db: Database) -> dict[tuple[str, str], int]:
    """How many rows per (channel, status)."""
    async with db.read() as session:
        rows = await session.execute(
            select(notify_outbox.c.channel, notify_outbox.c.status, func.count()).group_by(
                notify_outbox.c.channel, notify_outbox.c.status
            )
        )
        return {(channel, status): count for channel, status, count in rows}


async def recent_items(db: Database, *, limit: int = 50) -> list[OutboxItem]:
    """The newest rows, pending and failed ones first."""
    async with db.read() as session:
        rows = await session.execute(
            select(notify_outbox)
            .order_by((notify_outbox.c.status == "sent").asc(), notify_outbox.c.id.desc())
            .limit(limit)
        )
        return [_item(row) for row in rows]
