"""The notify work registered in :func:`adesync.wiring.install`: enqueue transitions (inside
health's transaction), expiry reminders and device events (inside each page's transaction),
deliver the outbox, count runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.errors import ConfigError
from adesync.health.messages import TokenLabel
from adesync.health.transitions import Transition
from adesync.notify.events import (
    device_event,
    dumps,
    email_text,
    reminder_event,
    transition_event,
)
from adesync.notify.outbox import Queued, enqueue
from adesync.notify.settings import NotifySettings, current_notify_settings
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.store.tables import tokens
from adesync.store.types import utcnow
from adesync.sync.model import DeviceRecord

if TYPE_CHECKING:
    from adesync.notify.deliver import Delivered

__all__ = [
    "DELIVER_LEASE",
    "REMINDER_LEASE",
    "count_run",
    "deliver_outbox",
    "enqueue_device_page",
    "enqueue_transitions",
    "remind_job",
    "send_expiry_reminders",
    "write_device_page",
]

log = logging.getLogger("adesync.notify")

DELIVER_LEASE = "notify.deliver"
REMINDER_LEASE = "notify.expiry_reminders"
ANNOUNCED = ("webhook", "email")


def _settings() -> NotifySettings | None:
    try:
        return current_notify_settings()
    except ConfigError as exc:
        log.error("notifications are off: %s", exc.message, extra={"event": "notify.config"})
        return None


def _queue(settings: NotifySettings, document: dict[str, Any], key: str) -> list[Queued]:
    channels = settings.channels()
    items = []
    if "webhook" in channels:
        items.append(Queued("webhook", document["event"], key, dumps(document)))
    if "email" in channels:
        subject, text = email_text(document)
        payload = {"event": document["event"], "id": document["id"], "subject": subject}
        items.append(Queued("email", document["event"], key, dumps({**payload, "text": text})))
    return items


async def enqueue_transitions(session: AsyncSession, transitions: Sequence[Transition]) -> None:
    """Queue a notification per transition on the webhook and e-mail channels (in the
    transaction that stores the new state)."""
    if not transitions:
        return
    settings = _settings()
    if settings is None or not set(ANNOUNCED) & set(settings.channels()):
        return
    items: list[Queued] = []
    for change in transitions:
        document = transition_event(change, settings.lang, settings.docs_url)
        key = f"state:{change.subject_key()}:{change.at.isoformat()}"
        items.extend(_queue(settings, document, key))
    await enqueue(session, items, transitions[0].at)


def _threshold(expiry: datetime, now: datetime, days: list[int]) -> int | None:
    """The smallest reminder threshold (in days) that the time left has reached."""
    left = expiry - now
    reached = [day for day in days if day > 0 and left <= timedelta(days=day)]
    return min(reached) if reached else None


async def send_expiry_reminders(
    db: Database,
    box: SecretBox | None = None,
    *,
    now: datetime | None = None,
    settings: NotifySettings | None = None,
) -> int:
    """Queue a reminder for every token whose time left reached a threshold (30, 14, 7, 1
    days by default); the outbox keeps one per token, expiry and threshold, however often
    this runs. Returns how many tokens are due a reminder."""
    settings = settings or _settings()
    if settings is None or not set(ANNOUNCED) & set(settings.channels()):
        return 0
    now = now or utcnow()
    horizon = now + timedelta(days=max(settings.expiry_reminder_days, default=0))
    async with db.write() as session:
        rows = (
            await session.execute(
                select(
                    tokens.c.id,
                    tokens.c.name,
                    tokens.c.org_name,
                    tokens.c.server_name,
                    tokens.c.token_type,
                    tokens.c.access_token_expiry,
                ).where(
                    tokens.c.oauth_credentials.is_not(None),
                    tokens.c.access_token_expiry > now,
                    tokens.c.access_token_expiry <= horizon,
                )
            )
        ).all()
        items: list[Queued] = []
        for row in rows:
            threshold = _threshold(row.access_token_expiry, now, settings.expiry_reminder_days)
            if threshold is None:
                continue
            label = TokenLabel(row.id, row.name, row.org_name, row.server_name, row.token_type)
            days_left = int((row.access_token_expiry - now).total_seconds() // 86400)
            document = reminder_event(
                label, row.access_token_expiry, days_left, threshold, now, settings.lang
            )
            key = f"expiry:{row.id}:{row.access_token_expiry.isoformat()}:{threshold}"
            items.extend(_queue(settings, document, key))
        await enqueue(session, items, now)
        return len({item.dedup_key for item in items})


async def remind_job(db: Database, box: SecretBox) -> None:
    """:func:`send_expiry_reminders` as a periodic job."""
    await send_expiry_reminders(db, box)


async def write_device_page(
    session: AsyncSession,
    token_id: int,
    kind: str,
    records: Sequence[DeviceRecord],
    now: datetime,
) -> None:
    """Queue a ``devices.synced`` event for one page (if device events are on) in the page's
    own transaction, with its devices and its cursor: a page is stored with its event or not
    at all (:func:`adesync.wiring.page_events` hands this to the sync's storage)."""
    settings = _settings()
    if settings is None or "device_events" not in settings.channels() or not records:
        return
    row = (
        await session.execute(
            select(
                tokens.c.id,
                tokens.c.name,
                tokens.c.org_name,
                tokens.c.server_name,
                tokens.c.token_type,
            ).where(tokens.c.id == token_id)
        )
    ).first()
    if row is None:
        return
    label = TokenLabel(row.id, row.name, row.org_name, row.server_name, row.token_type)
    document = device_event(label, kind, [record.document() for record in records], now)
    key = f"devices:{token_id}:{document['id']}"
    await enqueue(session, [Queued("device_events", "devices.synced", key, dumps(document))], now)


async def enqueue_device_page(
    db: Database, token_id: int, kind: str, records: Sequence[DeviceRecord]
) -> None:
    """:func:`write_device_page` in a transaction of its own."""
    async with db.write() as session:
        await write_device_page(session, token_id, kind, records, utcnow())


_delivering: dict[int, asyncio.Task[Delivered]] = {}


async def deliver_outbox(db: Database, box: SecretBox | None = None) -> None:
    """Start delivering what is due in the background and return at once, so a slow
    receiver never holds up the scheduler (a periodic job; one pass at a time per database
    in this process, and row claims keep other processes off the same rows)."""
    running = _delivering.get(id(db))
    if running is not None and not running.done():
        return
    settings = _settings()
    if settings is None:
        return
    task: asyncio.Task[Delivered] = asyncio.get_running_loop().create_task(
        _deliver_logged(db, settings), name="adesync-notify-deliver"
    )
    _delivering[id(db)] = task


async def _deliver_logged(db: Database, settings: NotifySettings) -> Delivered:
    # Imported here: processes that only evaluate health (diagnose) never load the senders.
    from adesync.notify.deliver import Delivered, deliver_due

    try:
        return await deliver_due(db, settings=settings)
    except Exception:
        log.exception("delivering notifications failed; the outbox keeps them")
        return Delivered()


def count_apple_answer(endpoint: str, code: str) -> None:
    """Count one attempt at a call to Apple in the metrics."""
    from adesync.notify import metrics

    metrics.record_apple_answer(endpoint, code)


async def count_run(db: Database, box: SecretBox, token_ids: Sequence[int]) -> None:
    """Count each token's finished sync run in the metrics (after their syncs)."""
    from adesync.notify import metrics

    for token_id in token_ids:
        await metrics.count_sync_run(db, token_id)
