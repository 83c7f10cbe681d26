"""Rules about syncing: a token whose syncs fail on this side, one that stopped syncing or never
did, and a stopped scheduler."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from adesync.health.catalogue import Severity
from adesync.health.model import Finding, Param, rule, stamp
from adesync.health.rules.context import RuleContext, TokenFacts
from adesync.redact import redact_urls
from adesync.store.tables_health import notify_outbox
from adesync.store.tables_sync import worker_heartbeats

__all__ = [
    "never_synced",
    "notifications_failing",
    "scheduler_down",
    "sync_failing",
    "sync_stale",
]

HOUR = 3600.0


def _last_error(token: TokenFacts, after: datetime | None) -> dict[str, Param]:
    """The token's last error, if it came after ``after``."""
    if token.last_error_at is None or token.last_error_code is None:
        return {}
    if after is not None and token.last_error_at <= after:
        return {}
    return {"last_error_code": token.last_error_code, "last_error_at": stamp(token.last_error_at)}


# What a sync that ended on something other than Apple's answer records as its detail.
SYNC_FAILURE_DETAILS = ("database_unavailable", "disk_full", "internal_error")


@rule(
    "sync_failing",
    Severity.WARNING,
    max_severity=Severity.ERROR,
    params=("since_at", "failures", "reference"),
    variants=SYNC_FAILURE_DETAILS,
)
async def sync_failing(ctx: RuleContext) -> list[Finding]:
    """The token's latest sync ended on something other than Apple's answer (the database, the
    disk, a defect): a warning the first time, an error while it persists (twice or more in a
    row). The next successful sync clears it (a check proves the token, not the sync)."""
    found = []
    for token in ctx.tokens:
        if not token.failing_with("sync_failing"):
            continue
        detail = token.last_error_detail
        found.append(
            ctx.finding(
                token,
                severity=Severity.ERROR if token.consecutive_failures > 1 else Severity.WARNING,
                variant=detail if detail in SYNC_FAILURE_DETAILS else None,
                since_at=stamp(token.failing_since or token.last_error_at),
                failures=token.consecutive_failures,
                reference=token.last_error_reference or "",
            )
        )
    return found


@rule(
    "sync_stale",
    Severity.WARNING,
    max_severity=Severity.ERROR,
    params=("last_success_at", "hours", "days", "last_error_code", "last_error_at"),
    variants=("no_error",),
)
async def sync_stale(ctx: RuleContext) -> list[Finding]:
    """No successful sync for 24 hours (warning) or 72 hours (error)."""
    found = []
    for token in ctx.tokens:
        last = token.last_successful_sync_at
        if last is None:
            continue  # never_synced speaks for tokens that never synced
        hours = (ctx.now - last).total_seconds() / HOUR
        if hours < ctx.limits.stale_warning_hours:
            continue
        error = _last_error(token, last)
        found.append(
            ctx.finding(
                token,
                severity=Severity.ERROR
                if hours >= ctx.limits.stale_error_hours
                else Severity.WARNING,
                variant=None if error else "no_error",
                last_success_at=stamp(last),
                hours=int(hours),
                days=int(hours // 24),
                extra=error,
            )
        )
    return found


@rule(
    "never_synced",
    Severity.WARNING,
    params=("added_at", "last_error_code", "last_error_at"),
    variants=("no_error",),
)
async def never_synced(ctx: RuleContext) -> list[Finding]:
    """The token was added over an hour ago and has never synced successfully."""
    grace = timedelta(hours=ctx.limits.never_synced_grace_hours)
    found = []
    for token in ctx.tokens:
        if token.last_successful_sync_at is not None or ctx.now - token.added_at < grace:
            continue
        error = _last_error(token, None)
        found.append(
            ctx.finding(
                token,
                variant=None if error else "no_error",
                added_at=stamp(token.added_at),
                extra=error,
            )
        )
    return found


@rule(
    "scheduler_down",
    Severity.WARNING,
    params=("last_seen_at", "minutes"),
    variants=("never",),
    installation=True,
)
async def scheduler_down(ctx: RuleContext) -> list[Finding]:
    """No ``serve`` or ``worker`` process has written a heartbeat for five minutes."""
    if not ctx.tokens:
        return []  # nothing to sync, nothing missed
    last_seen = (
        await ctx.session.execute(select(func.max(worker_heartbeats.c.last_seen_at)))
    ).scalar()
    if last_seen is None:
        return [ctx.finding(None, count=len(ctx.tokens), variant="never")]
    minutes = (ctx.now - last_seen).total_seconds() / 60
    if minutes < ctx.limits.scheduler_down_minutes:
        return []
    return [
        ctx.finding(
            None, count=len(ctx.tokens), last_seen_at=stamp(last_seen), minutes=int(minutes)
        )
    ]


# A delivery that failed this often is worth telling the admin about while it is retried.
STRUGGLING_ATTEMPTS = 3
FAILED_VISIBLE_HOURS = 24.0


@rule(
    "notifications_failing",
    Severity.WARNING,
    params=("channels", "last_error", "since_at"),
    installation=True,
)
async def notifications_failing(ctx: RuleContext) -> list[Finding]:
    """Notifications could not be delivered: retried three times or more, or given up on in
    the last day (``adesync notify status`` lists them)."""
    recent = ctx.now - timedelta(hours=FAILED_VISIBLE_HOURS)
    troubled = or_(
        (notify_outbox.c.status == "pending") & (notify_outbox.c.attempts >= STRUGGLING_ATTEMPTS),
        (notify_outbox.c.status == "failed") & (notify_outbox.c.last_attempt_at >= recent),
    )
    rows = (
        await ctx.session.execute(
            select(
                notify_outbox.c.channel,
                func.count(),
                func.min(notify_outbox.c.created_at),
                func.max(notify_outbox.c.last_attempt_at),
            )
            .where(troubled)
            .group_by(notify_outbox.c.channel)
            .order_by(notify_outbox.c.channel)
        )
    ).all()
    if not rows:
        return []
    latest_error = (
        await ctx.session.execute(
            select(notify_outbox.c.last_error)
            .where(troubled)
            .order_by(notify_outbox.c.last_attempt_at.desc())
            .limit(1)
        )
    ).scalar()
    return [
        ctx.finding(
            None,
            count=sum(count for _, count, _, _ in rows),
            channels=", ".join(channel for channel, _, _, _ in rows),
            last_error=redact_urls(latest_error or "")[:300],
            since_at=stamp(min(first for _, _, first, _ in rows)),
        )
    ]
