"""The sync runs and the outcomes recorded on a token: runs started and finished, Apple's errors
(and a sync's own failures) and successes, and the sweep of runs whose worker died.

:class:`RunRecords` is the part of :class:`adesync.store.sync_repo.SyncRepo` that writes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update

from adesync.store import token_repo
from adesync.store.database import Database, rowcount
from adesync.store.tables import tokens
from adesync.store.tables_sync import sync_runs
from adesync.sync.model import RunOutcome, RunTotals


class RunRecords:
    """Runs and outcomes on one database."""

    db: Database

    async def start_run(self, token_id: int, trigger: str, worker: str, now: datetime) -> int:
        async with self.db.write() as session:
            result = await session.execute(
                insert(sync_runs)
                .values(
                    token_id=token_id,
                    kind="sync",
                    trigger=trigger,
                    worker=worker,
                    started_at=now,
                    outcome=RunOutcome.RUNNING,
                )
                .returning(sync_runs.c.id)
            )
            run_id = int(result.scalar_one())
            if trigger == "manual":
                await session.execute(
                    update(tokens).where(tokens.c.id == token_id).values(last_manual_sync_at=now)
                )
        return run_id

    async def finish_run(
        self,
        run_id: int,
        totals: RunTotals,
        outcome: str,
        error_code: str | None,
        started_at: datetime,
        now: datetime,
        *,
        error_detail: str | None = None,
        error_reference: str | None = None,
    ) -> None:
        """Record how the run ended (``error_detail``/``error_reference``: with ``sync_failing``,
        what failed and the reference of the log line that says more)."""
        async with self.db.write() as session:
            await session.execute(
                update(sync_runs)
                .where(sync_runs.c.id == run_id)
                .values(
                    kind=totals.kind,
                    finished_at=now,
                    duration_ms=int((now - started_at).total_seconds() * 1000),
                    pages=totals.pages,
                    added=totals.added,
                    modified=totals.modified,
                    deleted=totals.deleted,
                    unchanged=totals.unchanged,
                    assigned=totals.assigned,
                    outcome=outcome,
                    error_code=error_code,
                    error_detail=error_detail,
                    error_reference=error_reference,
                    cursor_recovered=totals.cursor_recovered,
                )
            )

    async def record_success(
        self,
        token_id: int,
        now: datetime,
        clock_skew: float | None,
        *,
        synced: bool,
        proven: bool = False,
    ) -> None:
        """A call to Apple worked: clear the flags and the failure streak. ``proven`` (a check
        of the token, not a sync): a token that was failing is also due now, with its
        manual-sync allowance whole, and a streak of the sync's own failures (``sync_failing``)
        stays for a sync to clear."""
        values: dict[str, Any] = {
            **token_repo.failures_cleared(by_check=not synced),
            "clock_skew_seconds": clock_skew,
            "updated_at": now,
        }
        if proven:
            values.update(token_repo.schedule_after_fix(now, only_if_failing=True))
        if synced:
            values.update(last_sync_at=now, last_successful_sync_at=now)
        async with self.db.write() as session:
            await session.execute(update(tokens).where(tokens.c.id == token_id).values(values))

    async def record_error(
        self,
        token_id: int,
        code: str,
        status: int | None,
        body: str,
        now: datetime,
        *,
        clock_skew: float | None,
        throttled_until: datetime | None,
        synced: bool,
        detail: str | None = None,
        reference: str | None = None,
    ) -> int:
        """Store Apple's error (or with ``sync_failing``, a sync's own failure: its ``detail``
        and log ``reference``) on the token; returns the failure streak length."""
        flags = {
            "terms_not_accepted": code == "terms_not_accepted",
            "token_rejected": code == "token_rejected",
            "access_denied": code == "access_denied",
        }
        values: dict[str, Any] = {
            **_error_values(code, status, body, now),
            "last_error_detail": detail,
            "last_error_reference": reference,
            "consecutive_failures": tokens.c.consecutive_failures + 1,
            "failing_since": func.coalesce(tokens.c.failing_since, now),
            "throttled_until": throttled_until,
            "updated_at": now,
        }
        if clock_skew is not None:
            values["clock_skew_seconds"] = clock_skew
        if any(flags.values()):
            values.update(flags)
        if synced:
            values["last_sync_at"] = now
        async with self.db.write() as session:
            await session.execute(update(tokens).where(tokens.c.id == token_id).values(values))
            streak = (
                await session.execute(
                    select(tokens.c.consecutive_failures).where(tokens.c.id == token_id)
                )
            ).scalar_one()
        return int(streak)

    async def record_profile_error(
        self,
        token_id: int,
        code: str,
        status: int | None,
        body: str,
        now: datetime,
        *,
        profile_uuid: str | None = None,
    ) -> None:
        """A problem with the profile in use (``profile_uuid``): shown as the token's last
        error, without failing the sync."""
        values = _error_values(code, status, body, now)
        if code in PROFILE_ERROR_CODES:
            values["profile_error_uuid"] = profile_uuid
        async with self.db.write() as session:
            await session.execute(
                update(tokens).where(tokens.c.id == token_id).values(**values, updated_at=now)
            )


# The errors the profile findings are about: kept apart from the last error (of any kind).
PROFILE_ERROR_CODES = ("profile_invalid", "profile_not_found")


def _error_values(code: str, status: int | None, body: str, now: datetime) -> dict[str, Any]:
    """The token columns an error of Apple's (or the network's) sets."""
    values: dict[str, Any] = {
        "last_error_code": code,
        "last_error_status": status,
        "last_error_body": body[:1024],
        "last_error_at": now,
        "last_error_detail": None,
        "last_error_reference": None,
    }
    if code in PROFILE_ERROR_CODES:
        values.update(profile_error_code=code, profile_error_body=body[:1024], profile_error_at=now)
    return values


async def mark_interrupted_runs(db: Database, now: datetime) -> int:
    """Close the runs left ``running`` by a worker that died: a run is live only while its
    worker holds the token's lease, so one whose worker no longer holds it (lease given back,
    expired, or taken by another worker) was interrupted. Returns how many were closed.
    (Claiming a token closes its own at once: :func:`close_runs_of_ended_leases`.)"""
    lease_held = (
        select(tokens.c.id)
        .where(
            tokens.c.id == sync_runs.c.token_id,
            tokens.c.lease_owner == sync_runs.c.worker,
            tokens.c.lease_expires_at >= now,
        )
        .exists()
    )
    newer = sync_runs.alias("newer")
    newer_run = (
        select(newer.c.id)
        .where(newer.c.token_id == sync_runs.c.token_id, newer.c.id > sync_runs.c.id)
        .exists()
    )
    async with db.write() as session:
        result = await session.execute(
            update(sync_runs)
            .where(sync_runs.c.outcome == RunOutcome.RUNNING, or_(~lease_held, newer_run))
            .values(outcome=RunOutcome.INTERRUPTED, finished_at=now)
        )
    return rowcount(result)
