"""Delivering the outbox: claim due rows, send each on its channel, record the outcome.

Failures are retried with exponential backoff (``retry_seconds`` doubling, at most six hours
apart) up to ``max_attempts``, then the row is ``failed`` — visible in ``adesync notify
status``, the ``notifications_failing`` finding and the metrics — until ``adesync notify
retry``. Delivery runs beside syncing (a periodic job), never inside it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from adesync.notify import metrics
from adesync.notify.outbox import OutboxItem, claim_due, mark_failed, mark_sent, prune_sent
from adesync.notify.senders import DeliveryFailed, post_signed, send_email
from adesync.notify.settings import NotifySettings, load_notify_settings
from adesync.store.database import Database
from adesync.store.types import utcnow

__all__ = ["Delivered", "deliver_due", "retry_delay"]

log = logging.getLogger("adesync.notify")

LONGEST_WAIT = timedelta(hours=6)
KEEP_SENT = timedelta(days=14)
CONCURRENT_SENDS = 5


@dataclass(frozen=True)
class Delivered:
    """What one delivery pass did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0


def retry_delay(settings: NotifySettings, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt (1-based)."""
    seconds = settings.retry_seconds * (2 ** min(attempts - 1, 30))
    return min(timedelta(seconds=seconds), LONGEST_WAIT)


async def _send(
    item: OutboxItem, settings: NotifySettings, transport: httpx.AsyncBaseTransport | None
) -> None:
    if item.channel == "email":
        if "email" not in settings.channels():
            raise DeliveryFailed("E-mail is no longer configured (ADESYNC_SMTP_HOST).")
        document = json.loads(item.payload)
        await send_email(settings, document["subject"], document["text"])
        return
    url = settings.webhook_url if item.channel == "webhook" else settings.device_events_url
    if not url:
        raise DeliveryFailed(f"The {item.channel} channel is no longer configured.")
    await post_signed(
        url,
        settings.secret_for(item.channel),
        item.payload,
        event=item.event,
        delivery_id=item.id,
        timeout_seconds=settings.timeout_seconds,
        transport=transport,
    )


async def deliver_due(
    db: Database,
    *,
    now: datetime | None = None,
    settings: NotifySettings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    limit: int = 200,
) -> Delivered:
    """Send every due notification once; returns how many were sent, will be retried, or
    were given up. ``now`` is injectable for tests."""
    settings = settings or load_notify_settings()
    now = now or utcnow()
    claim_for = timedelta(seconds=settings.timeout_seconds * 3 + 30)
    items = await claim_due(db, now, limit=limit, claim_for=claim_for)
    gate = asyncio.Semaphore(CONCURRENT_SENDS)

    async def one(item: OutboxItem) -> str:
        async with gate:
            try:
                await _send(item, settings, transport)
            except DeliveryFailed as exc:
                attempts = item.attempts + 1
                gave_up = attempts >= settings.max_attempts
                retry_at = None if gave_up else now + retry_delay(settings, attempts)
                await mark_failed(db, item, str(exc), now, retry_at)
                metrics.NOTIFICATIONS.labels(item.channel, "error").inc()
                log.warning(
                    "notification %s (%s) not delivered: %s",
                    item.id,
                    item.channel,
                    exc,
                    extra={
                        "event": "notify.delivery_failed",
                        "channel": item.channel,
                        "delivery": item.id,
                        "attempts": attempts,
                        "gave_up": gave_up,
                    },
                )
                return "failed" if gave_up else "retrying"
            await mark_sent(db, item.id, now)
            metrics.NOTIFICATIONS.labels(item.channel, "sent").inc()
            return "sent"

    outcomes = await asyncio.gather(*(one(item) for item in items))
    await prune_sent(db, now - KEEP_SENT)
    return Delivered(
        sent=outcomes.count("sent"),
        retrying=outcomes.count("retrying"),
        failed=outcomes.count("failed"),
    )
