"""Database side of the sync engine: device upserts, cursors, runs, errors and leases.

Implements :class:`adesync.sync.engine.SyncStore`. Each page's devices and the new cursor are
written in one transaction, guarded by the token's lease, so a crash between or inside pages
loses nothing and a worker that lost its lease cannot write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.store.database import Database, rowcount
from adesync.store.secrets import SecretBox
from adesync.store.tables import tokens
from adesync.store.tables_sync import device_history, devices, sync_runs
from adesync.sync.model import DeviceRecord, OAuthValues, PageResult, RunTotals, TokenSyncState

APPLE_DEVICE_FIELDS = (
    "model",
    "description",
    "color",
    "asset_tag",
    "os",
    "device_family",
    "profile_status",
    "profile_uuid",
    "profile_assign_time",
    "profile_push_time",
    "device_assigned_date",
    "device_assigned_by",
    "mdm_migration_deadline",
)
# Deleted records may carry only identity fields; these are the ones kept from them.
IDENTITY_FIELDS = ("model", "description", "color", "os", "device_family")
NEEDS_PROFILE = ("empty", "removed")


class LeaseLost(Exception):
    """Another worker holds this token now; the page was not written."""


def _clip(fields: dict[str, Any]) -> dict[str, Any]:
    """Fit Apple's strings into the column sizes (PostgreSQL refuses longer ones)."""
    clipped: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, str):
            length = getattr(devices.c[name].type, "length", None)
            if length is not None and len(value) > length:
                value = value[:length]
        clipped[name] = value
    return clipped


def upsert_statement(db: Database, columns: Sequence[str]) -> Any:
    """INSERT ... ON CONFLICT (token_id, serial_number) DO UPDATE of ``columns``, skipping
    rows whose stored operation is newer than the incoming one."""
    dialect_insert = postgresql.insert if db.is_postgresql else sqlite.insert
    stmt = dialect_insert(devices)
    newer_or_same = or_(
        devices.c.last_op_date.is_(None),
        stmt.excluded.last_op_date.is_(None),
        devices.c.last_op_date <= stmt.excluded.last_op_date,
    )
    return stmt.on_conflict_do_update(
        index_elements=[devices.c.token_id, devices.c.serial_number],
        set_={name: stmt.excluded[name] for name in columns},
        where=newer_or_same,
    )


def latest_per_serial(records: Sequence[DeviceRecord]) -> list[DeviceRecord]:
    """One record per serial: the latest ``op_date`` wins, a later position breaks ties."""
    chosen: dict[str, DeviceRecord] = {}
    for record in records:
        current = chosen.get(record.serial_number)
        if (
            current is None
            or current.op_date is None
            or record.op_date is None
            or record.op_date >= current.op_date
        ):
            chosen[record.serial_number] = record
    return list(chosen.values())


class SyncRepo:
    """The sync engine's storage, on one database."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box
        self._live_upsert = upsert_statement(
            db,
            (
                *APPLE_DEVICE_FIELDS,
                "last_op_type",
                "last_op_date",
                "deleted",
                "deleted_at",
                "updated_at",
            ),
        )
        self._fetch_upsert = upsert_statement(
            db,
            (
                *APPLE_DEVICE_FIELDS,
                "last_op_type",
                "last_op_date",
                "deleted",
                "deleted_at",
                "seen_in_fetch",
                "updated_at",
            ),
        )
        self._deleted_upsert = upsert_statement(
            db,
            (
                *IDENTITY_FIELDS,
                "last_op_type",
                "last_op_date",
                "deleted",
                "deleted_at",
                "updated_at",
            ),
        )

    # -- reading -------------------------------------------------------------------------

    async def load_state(self, token_id: int) -> TokenSyncState:
        async with self.db.read() as session:
            row = (await session.execute(select(tokens).where(tokens.c.id == token_id))).one()
        credentials = None
        if row.oauth_credentials is not None:
            values = json.loads(self.box.open_text(row.oauth_credentials))
            credentials = OAuthValues(
                consumer_key=values["consumer_key"],
                consumer_secret=values["consumer_secret"],
                access_token=values["access_token"],
                access_secret=values["access_secret"],
            )
        return TokenSyncState(
            token_id=row.id,
            name=row.name,
            dep_url=row.dep_url,
            credentials=credentials,
            cursor=row.cursor,
            fetch_started_at=row.fetch_started_at,
            last_full_fetch_at=row.last_full_fetch_at,
            default_profile_uuid=row.default_profile_uuid,
            last_manual_sync_at=row.last_manual_sync_at,
        )

    # -- pages ---------------------------------------------------------------------------

    async def start_full_fetch(self, token_id: int, worker: str, at: datetime) -> None:
        """Forget the cursor and mark a full fetch under way since ``at``."""
        async with self.db.write() as session:
            await self._guard(session, token_id, worker)
            await session.execute(
                update(tokens)
                .where(tokens.c.id == token_id)
                .values(cursor=None, fetch_started_at=at, updated_at=at)
            )

    async def commit_page(
        self,
        token_id: int,
        worker: str,
        records: Sequence[DeviceRecord],
        cursor: str,
        *,
        fetch_started_at: datetime | None,
        completes_fetch: bool,
        now: datetime,
    ) -> PageResult:
        """Apply one page and store its cursor in one transaction (see the module doc)."""
        result = PageResult()
        unique = latest_per_serial(records)
        async with self.db.write() as session:
            await self._guard(session, token_id, worker)
            if fetch_started_at is not None:
                await self._apply_fetch(session, token_id, unique, fetch_started_at, now, result)
            else:
                await self._apply_sync(session, token_id, unique, now, result)
            values: dict[str, Any] = {"cursor": cursor, "cursor_issued_at": now, "updated_at": now}
            if completes_fetch and fetch_started_at is not None:
                gone = await session.execute(
                    update(devices)
                    .where(
                        devices.c.token_id == token_id,
                        devices.c.deleted.is_(False),
                        or_(
                            devices.c.seen_in_fetch.is_(None),
                            devices.c.seen_in_fetch < fetch_started_at,
                        ),
                    )
                    .values(deleted=True, deleted_at=now, last_op_type="deleted", updated_at=now)
                )
                result.deleted += rowcount(gone)
                values.update(fetch_started_at=None, last_full_fetch_at=now)
            await session.execute(update(tokens).where(tokens.c.id == token_id).values(values))
        return result

    async def _apply_fetch(
        self,
        session: AsyncSession,
        token_id: int,
        records: Sequence[DeviceRecord],
        fetch_started_at: datetime,
        now: datetime,
        result: PageResult,
    ) -> None:
        live = [r for r in records if r.op_type != "deleted"]
        known = await self._known(session, token_id, [r.serial_number for r in live])
        rows = []
        for record in live:
            rows.append(self._live_row(token_id, record, now) | {"seen_in_fetch": fetch_started_at})
            status = record.fields.get("profile_status")
            if record.serial_number not in known or status in NEEDS_PROFILE or status is None:
                result.to_assign.append(record.serial_number)
        if rows:
            await session.execute(self._fetch_upsert, rows)
        result.added += len(rows)
        gone = [r for r in records if r.op_type == "deleted"]
        if gone:
            await session.execute(
                self._deleted_upsert, [self._gone_row(token_id, r, now) for r in gone]
            )
            result.deleted += len(gone)

    async def _apply_sync(
        self,
        session: AsyncSession,
        token_id: int,
        records: Sequence[DeviceRecord],
        now: datetime,
        result: PageResult,
    ) -> None:
        known = await self._known(session, token_id, [r.serial_number for r in records])
        live_rows: list[dict[str, Any]] = []
        gone_rows: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        for record in records:
            stored = known.get(record.serial_number)
            if stored is not None:
                stored_date, _ = stored
                if stored_date and record.op_date and record.op_date < stored_date:
                    result.skipped_stale += 1
                    continue
            op = (record.op_type or "added").lower()
            if op == "deleted":
                gone_rows.append(self._gone_row(token_id, record, now))
                result.deleted += 1
            else:
                is_new = stored is None or stored[1]
                if op == "added" or is_new:
                    # A `modified` for a device we do not hold is how ABM reports some moves.
                    result.added += 1
                    result.to_assign.append(record.serial_number)
                else:
                    result.modified += 1
                    if record.fields.get("profile_status") in NEEDS_PROFILE:
                        result.to_assign.append(record.serial_number)
                live_rows.append(self._live_row(token_id, record, now))
            history.append(
                {
                    "token_id": token_id,
                    "serial_number": record.serial_number,
                    "at": record.op_date or now,
                    "kind": "op",
                    "detail": op[:32],
                    "profile_uuid": record.fields.get("profile_uuid"),
                }
            )
        if live_rows:
            await session.execute(self._live_upsert, live_rows)
        if gone_rows:
            await session.execute(self._deleted_upsert, gone_rows)
        if history:
            await session.execute(insert(device_history), history)

    async def _known(
        self, session: AsyncSession, token_id: int, serials: Sequence[str]
    ) -> dict[str, tuple[datetime | None, bool]]:
        """Stored (last_op_date, deleted) of the given serials of this token."""
        if not serials:
            return {}
        rows = await session.execute(
            select(devices.c.serial_number, devices.c.last_op_date, devices.c.deleted).where(
                devices.c.token_id == token_id, devices.c.serial_number.in_(serials)
            )
        )
        return {serial: (op_date, deleted) for serial, op_date, deleted in rows}

    @staticmethod
    def _live_row(token_id: int, record: DeviceRecord, now: datetime) -> dict[str, Any]:
        row = _clip({name: record.fields.get(name) for name in APPLE_DEVICE_FIELDS})
        row.update(
            token_id=token_id,
            serial_number=record.serial_number,
            last_op_type=record.op_type or "added",
            last_op_date=record.op_date,
            deleted=False,
            deleted_at=None,
            seen_in_fetch=None,
            first_seen_at=now,
            updated_at=now,
        )
        return row

    @staticmethod
    def _gone_row(token_id: int, record: DeviceRecord, now: datetime) -> dict[str, Any]:
        row = _clip({name: record.fields.get(name) for name in IDENTITY_FIELDS})
        row.update(
            token_id=token_id,
            serial_number=record.serial_number,
            last_op_type="deleted",
            last_op_date=record.op_date,
            deleted=True,
            deleted_at=record.op_date or now,
            first_seen_at=now,
            updated_at=now,
        )
        return row

    async def _guard(self, session: AsyncSession, token_id: int, worker: str) -> None:
        """Raise LeaseLost unless ``worker`` holds this token's lease (checked in the same
        transaction as the write, so a takeover between pages cannot interleave)."""
        owner = (
            await session.execute(select(tokens.c.lease_owner).where(tokens.c.id == token_id))
        ).scalar()
        if owner != worker:
            raise LeaseLost(f"token {token_id} is leased by {owner!r}, not {worker!r}")

    # -- runs and outcomes ---------------------------------------------------------------

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
                    outcome="running",
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
    ) -> None:
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
                    assigned=totals.assigned,
                    outcome=outcome,
                    error_code=error_code,
                    cursor_recovered=totals.cursor_recovered,
                )
            )

    async def record_success(
        self, token_id: int, now: datetime, clock_skew: float | None, *, synced: bool
    ) -> None:
        """A call to Apple worked: clear the flags and the failure streak."""
        values: dict[str, Any] = {
            "terms_not_accepted": False,
            "token_rejected": False,
            "access_denied": False,
            "consecutive_failures": 0,
            "failing_since": None,
            "throttled_until": None,
            "clock_skew_seconds": clock_skew,
            "updated_at": now,
        }
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
    ) -> int:
        """Store Apple's error on the token; returns the failure streak length."""
        flags = {
            "terms_not_accepted": code == "terms_not_accepted",
            "token_rejected": code == "token_rejected",
            "access_denied": code == "access_denied",
        }
        values: dict[str, Any] = {
            "last_error_code": code,
            "last_error_status": status,
            "last_error_body": body[:1024],
            "last_error_at": now,
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
        self, token_id: int, code: str, status: int | None, body: str, now: datetime
    ) -> None:
        """A profile problem: shown as the token's last error, without failing the sync."""
        async with self.db.write() as session:
            await session.execute(
                update(tokens)
                .where(tokens.c.id == token_id)
                .values(
                    last_error_code=code,
                    last_error_status=status,
                    last_error_body=body[:1024],
                    last_error_at=now,
                    updated_at=now,
                )
            )


def due_filter(now: datetime) -> Any:
    """Tokens whose sync is due and whose lease is free."""
    return and_(
        tokens.c.oauth_credentials.is_not(None),
        or_(tokens.c.next_sync_at.is_(None), tokens.c.next_sync_at <= now),
        or_(tokens.c.lease_expires_at.is_(None), tokens.c.lease_expires_at < now),
    )
