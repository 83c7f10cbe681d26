"""When a token is synced next: the intervals and backoff rules, as pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from adesync.config import Settings

# Errors the admin must fix: retried hourly so the flag clears soon after the fix.
ADMIN_FIXES = frozenset({"token_expired", "token_rejected", "access_denied", "terms_not_accepted"})


@dataclass(frozen=True)
class Intervals:
    sync: timedelta
    manual: timedelta
    full_fetch: timedelta
    backoff_max: timedelta
    flagged_retry: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Intervals:
        return cls(
            sync=timedelta(minutes=settings.sync_interval_minutes),
            manual=timedelta(minutes=settings.manual_sync_interval_minutes),
            full_fetch=timedelta(days=settings.full_fetch_interval_days),
            backoff_max=timedelta(hours=settings.error_backoff_max_hours),
            flagged_retry=timedelta(minutes=settings.flagged_retry_minutes),
        )


def next_sync_at(
    intervals: Intervals,
    now: datetime,
    *,
    outcome: str,
    error_code: str | None,
    consecutive_failures: int,
    retry_at: datetime | None,
    assignment_retry_at: datetime | None = None,
) -> datetime:
    """The next due time after a run that ended with ``outcome``."""
    if outcome == "ok":
        due = now + intervals.sync
        return min(due, assignment_retry_at) if assignment_retry_at else due
    if outcome == "throttled":
        # Wait exactly as Apple asked (or a minute if it did not say).
        return retry_at if retry_at and retry_at > now else now + timedelta(minutes=1)
    if error_code in ADMIN_FIXES:
        return now + intervals.flagged_retry
    steps = max(consecutive_failures, 1) - 1
    backoff = timedelta(minutes=1) * (1 << min(steps, 16))
    return now + min(backoff, intervals.backoff_max)


def manual_sync_allowed_at(
    intervals: Intervals, last_manual_sync_at: datetime | None
) -> datetime | None:
    """When a manual sync is next allowed (None: now)."""
    if last_manual_sync_at is None:
        return None
    return last_manual_sync_at + intervals.manual


def full_fetch_allowed_at(
    intervals: Intervals, last_full_fetch_at: datetime | None
) -> datetime | None:
    if last_full_fetch_at is None:
        return None
    return last_full_fetch_at + intervals.full_fetch
