"""Assignment results per device: what Apple answered, and when to try again."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from adesync.store.bulk import BulkWrite, device_ids
from adesync.store.database import Database
from adesync.store.sync_repo import history_insert
from adesync.store.tables_sync import assignments, devices

# FAILED is retried three times, after these waits; then it stays FAILED (contact Apple).
FAILED_RETRY_WAITS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
DEFAULT_THROTTLE_WAIT = timedelta(seconds=60)
# The answers that get a next attempt.
RETRIED = ("FAILED", "THROTTLED")


def next_attempt(
    status: str, attempts: int, now: datetime, retry_after: int | None
) -> datetime | None:
    if status == "THROTTLED":
        return now + (timedelta(seconds=retry_after) if retry_after else DEFAULT_THROTTLE_WAIT)
    if status == "FAILED" and attempts <= len(FAILED_RETRY_WAITS):
        return now + FAILED_RETRY_WAITS[attempts - 1]
    return None


ASSIGNMENT_COLUMNS = (
    "token_id",
    "serial_number",
    "profile_uuid",
    "status",
    "attempts",
    "last_attempt_at",
    "next_attempt_at",
)


class AssignmentRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._upsert = BulkWrite(
            db,
            assignments,
            ASSIGNMENT_COLUMNS,
            conflict=("token_id", "serial_number"),
            update=ASSIGNMENT_COLUMNS[2:],
        )
        self._history = history_insert(db)

    async def record_results(
        self,
        token_id: int,
        profile_uuid: str,
        results: Mapping[str, str],
        retry_after: int | None,
        now: datetime,
    ) -> None:
        """Store Apple's per-serial answers; SUCCESS also marks the device assigned locally."""
        serials = list(results)
        async with self.db.write() as session:
            # Only an earlier FAILED or THROTTLED answer changes the count of attempts.
            previous: dict[str, tuple[str, str, int]] = {}
            for start in range(0, len(serials), 1000):
                for serial, uuid, status, attempts in await session.execute(
                    select(
                        assignments.c.serial_number,
                        assignments.c.profile_uuid,
                        assignments.c.status,
                        assignments.c.attempts,
                    ).where(
                        assignments.c.token_id == token_id,
                        assignments.c.status.in_(RETRIED),
                        assignments.c.serial_number.in_(serials[start : start + 1000]),
                    )
                ):
                    previous[serial] = (uuid, status, attempts)
            rows: list[tuple[Any, ...]] = []
            for serial, status in results.items():
                before = previous.get(serial)
                retrying = (
                    before is not None
                    and before[0] == profile_uuid
                    and before[1]
                    in (
                        "FAILED",
                        "THROTTLED",
                    )
                )
                attempts = (before[2] + 1) if retrying and before else 1
                if status == "THROTTLED" and before and retrying:
                    attempts = before[2]  # a throttled try does not use up a retry
                rows.append(
                    (
                        token_id,
                        serial,
                        profile_uuid,
                        status,
                        attempts,
                        now,
                        next_attempt(status, attempts, now, retry_after),
                    )
                )
            await self._upsert.execute(session, rows)
            succeeded = [s for s, status in results.items() if status == "SUCCESS"]
            for start in range(0, len(succeeded), 1000):
                await session.execute(
                    update(devices)
                    .where(
                        devices.c.id.in_(
                            await device_ids(session, token_id, succeeded[start : start + 1000])
                        )
                    )
                    .values(
                        profile_uuid=profile_uuid,
                        profile_status="assigned",
                        profile_assign_time=now,
                        updated_at=now,
                    )
                )
            await self._history.execute(
                session,
                [
                    (token_id, serial, now, "assignment", status, profile_uuid)
                    for serial, status in results.items()
                ],
            )

    async def due_retries(self, token_id: int, now: datetime) -> dict[str, list[str]]:
        """Serials whose FAILED or THROTTLED assignment is due again, by profile."""
        async with self.db.read() as session:
            rows = await session.execute(
                select(assignments.c.profile_uuid, assignments.c.serial_number)
                .join(
                    devices,
                    and_(
                        devices.c.token_id == assignments.c.token_id,
                        devices.c.serial_number == assignments.c.serial_number,
                    ),
                )
                .where(
                    assignments.c.token_id == token_id,
                    assignments.c.status.in_(("FAILED", "THROTTLED")),
                    assignments.c.next_attempt_at.is_not(None),
                    assignments.c.next_attempt_at <= now,
                    devices.c.deleted.is_(False),
                )
            )
            due: dict[str, list[str]] = defaultdict(list)
            for profile_uuid, serial in rows:
                due[profile_uuid].append(serial)
        return dict(due)

    async def next_retry_at(self, token_id: int) -> datetime | None:
        async with self.db.read() as session:
            rows = await session.execute(
                select(assignments.c.next_attempt_at)
                .where(
                    assignments.c.token_id == token_id,
                    assignments.c.next_attempt_at.is_not(None),
                )
                .order_by(assignments.c.next_attempt_at)
                .limit(1)
            )
            return rows.scalar()

    async def waiting(self, token_id: int, serials: Sequence[str], now: datetime) -> set[str]:
        """Serials with a retry scheduled in the future (not to be assigned again now)."""
        if not serials:
            return set()
        waiting: set[str] = set()
        async with self.db.read() as session:
            for start in range(0, len(serials), 1000):
                # Only FAILED and THROTTLED answers have a next attempt; saying so lets the
                # database use the (token, status) index rather than read all the token's rows.
                rows = await session.execute(
                    select(assignments.c.serial_number).where(
                        assignments.c.token_id == token_id,
                        assignments.c.status.in_(RETRIED),
                        assignments.c.serial_number.in_(serials[start : start + 1000]),
                        assignments.c.next_attempt_at > now,
                    )
                )
                waiting.update(serial for (serial,) in rows)
        return waiting

    async def serials_for_new_default(self, token_id: int, old_default: str | None) -> list[str]:
        """Live devices that had the old default profile or none: a new default re-assigns
        them; devices given another profile by hand keep it."""
        condition = or_(
            devices.c.profile_uuid.is_(None),
            devices.c.profile_status.in_(("empty", "removed")),
        )
        if old_default:
            condition = or_(condition, devices.c.profile_uuid == old_default)
        async with self.db.read() as session:
            rows = await session.execute(
                select(devices.c.serial_number)
                .where(devices.c.token_id == token_id, devices.c.deleted.is_(False), condition)
                .order_by(devices.c.serial_number)
            )
            return [serial for (serial,) in rows]
