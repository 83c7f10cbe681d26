"""Database side of the sync engine: device upserts, cursors and leases (runs and errors:
:mod:`adesync.store.run_repo`).

Implements :class:`adesync.sync.engine.SyncStore`. Each page's devices and the new cursor are
written in one transaction, guarded by the token's lease, so a crash between or inside pages
loses nothing and a worker that lost its lease cannot write.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.store.bulk import BulkWrite, probe_devices, string_length
from adesync.store.database import Database, rowcount
from adesync.store.page_counts import (
    STORED_COLUMNS,
    Found,
    StoredDevice,
    count_device,
    counted_fetch_sql,
    found_from,
    is_stale,
)
from adesync.store.run_repo import RunRecords
from adesync.store.secrets import SecretBox
from adesync.store.tables import tokens
from adesync.store.tables_sync import device_history, devices, sync_runs
from adesync.store.types import UTCDateTime
from adesync.sync.model import (
    APPLE_DEVICE_FIELDS,
    DerivedDeviceColumn,
    DeviceRecord,
    OAuthValues,
    PageResult,
    RunOutcome,
    TokenSyncState,
)

# Deleted records may carry only identity fields; these are the ones kept from them.
IDENTITY_FIELDS = ("model", "description", "color", "os", "device_family")
_IDENTITY_POSITIONS = tuple(APPLE_DEVICE_FIELDS.index(name) for name in IDENTITY_FIELDS)
NEEDS_PROFILE = ("empty", "removed")


class LeaseLost(Exception):
    """Another worker holds this token now; the page was not written."""


# What else a page writes in its own transaction, after its devices and before its cursor (the
# composition root's: :func:`adesync.wiring.page_events`): called with the page's session, the
# token id, fetch|sync, the page's device records and the page's time, for non-empty pages.
PageEvents = Callable[[AsyncSession, int, str, Sequence[DeviceRecord], datetime], Awaitable[None]]


# Row shapes of the three upserts (see _live_row and _gone_row).
_LIVE_COLUMNS = (
    "token_id",
    "serial_number",
    *APPLE_DEVICE_FIELDS,
    "last_op_type",
    "last_op_date",
    "deleted",
    "deleted_at",
    "seen_in_fetch",
    "first_seen_at",
    "updated_at",
)
_GONE_COLUMNS = (
    "token_id",
    "serial_number",
    *IDENTITY_FIELDS,
    "last_op_type",
    "last_op_date",
    "deleted",
    "deleted_at",
    "first_seen_at",
    "updated_at",
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


# Positions in a record's values of Apple's strings, with their column's length.
_RECORD_STRINGS = tuple(
    (i, length)
    for i, name in enumerate(APPLE_DEVICE_FIELDS)
    if (length := string_length(devices, name)) is not None
)
_OP_TYPE_LENGTH = string_length(devices, "last_op_type") or 16

# Positions in a record's values of Apple's timestamps.
_RECORD_TIMESTAMPS = tuple(
    i for i, name in enumerate(APPLE_DEVICE_FIELDS) if isinstance(devices.c[name].type, UTCDateTime)
)

HISTORY_COLUMNS = ("token_id", "serial_number", "at", "kind", "detail", "profile_uuid")


def _device_upsert(
    db: Database,
    columns: Sequence[str],
    update: Sequence[str],
    derived: Sequence[DerivedDeviceColumn] = (),
    *,
    clip: bool = True,
) -> BulkWrite:
    """An upsert of device rows that skips rows whose stored operation is newer (``derived``
    columns follow ``columns`` in each row; without ``clip`` the rows' strings fit already)."""
    return BulkWrite(
        db,
        devices,
        (*columns, *(column.name for column in derived)),
        clip=clip,
        conflict=("token_id", "serial_number"),
        update=update,
        where="devices.last_op_date IS NULL OR excluded.last_op_date IS NULL "
        "OR devices.last_op_date <= excluded.last_op_date",
        set_sql={column.name: column.on_update for column in derived},
    )


def history_insert(db: Database) -> BulkWrite:
    """Inserts rows of HISTORY_COLUMNS into ``device_history``."""
    return BulkWrite(db, device_history, HISTORY_COLUMNS)


@dataclass
class PreparedFetchPage:
    """A fetch page as :meth:`SyncRepo.prepare_fetch_page` left it for ``commit_page``."""

    records: Sequence[DeviceRecord]  # as given (commit_page checks it gets the same page)
    token_id: int
    fetch_started_at: datetime
    now: datetime
    unique: list[DeviceRecord]  # one record per serial (latest_per_serial)
    live: list[DeviceRecord]  # of those, the ones not deleted
    rows: list[tuple[Any, ...]]  # the live ones' rows for the fetch upsert


class SyncRepo(RunRecords):
    """The sync engine's storage, on one database; ``derived`` columns (other features',
    see :class:`DerivedDeviceColumn`) are written with every live device of a page, and
    ``page_events`` (see :data:`PageEvents`) in every page's transaction."""

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        derived: Sequence[DerivedDeviceColumn] = (),
        page_events: PageEvents | None = None,
    ) -> None:
        self.db = db
        self.box = box
        self._page_events = page_events
        derived = tuple({column.name: column for column in derived}.values())  # each once
        self._derived = tuple(column.for_record for column in derived)
        updated = (*APPLE_DEVICE_FIELDS, "last_op_type", "last_op_date", "deleted", "deleted_at")
        # Rows of _live_row: their strings are cut to fit as the row is built.
        self._live_upsert = _device_upsert(
            db, _LIVE_COLUMNS, (*updated, "updated_at"), derived, clip=False
        )
        self._fetch_upsert = _device_upsert(
            db, _LIVE_COLUMNS, (*updated, "seen_in_fetch", "updated_at"), derived, clip=False
        )
        gone_updated = (*IDENTITY_FIELDS, "last_op_type", "last_op_date", "deleted")
        self._deleted_upsert = _device_upsert(
            db, _GONE_COLUMNS, (*gone_updated, "deleted_at", "updated_at")
        )
        self._history = history_insert(db)
        self._counted_fetch = counted_fetch_sql(self._fetch_upsert) if db.is_postgresql else None
        self._stamp = self._live_upsert.stamp

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
            throttled_until=row.throttled_until,
            dep_url_checked=row.dep_url_checked,
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
        assigning: bool = True,
        prepared: PreparedFetchPage | None = None,
    ) -> PageResult:
        """Apply one page, its events (``page_events``) and its cursor in one transaction (see
        the module doc).
        The page's devices are looked up first (to count them as added, modified or
        unchanged: see :class:`PageResult`); without ``assigning`` (no default profile) a fetch
        page leaves ``to_assign`` empty. ``prepared``: this fetch page's rows, built ahead by
        :meth:`prepare_fetch_page` (used if built for these records and this fetch)."""
        result = PageResult()
        if fetch_started_at is not None and not (
            prepared is not None
            and prepared.records is records
            and prepared.token_id == token_id
            and prepared.fetch_started_at == fetch_started_at
        ):
            prepared = self.prepare_fetch_page(token_id, records, fetch_started_at, now)
        async with self.db.page_write() as session:
            # The lease is checked last, by the cursor's own UPDATE (one statement fewer, and
            # the devices' upsert goes out first): a worker that lost the lease rolls back.
            if fetch_started_at is not None:
                assert prepared is not None
                await self._apply_fetch(session, token_id, prepared, result, assigning)
            else:
                await self._apply_sync(session, token_id, latest_per_serial(records), now, result)
            if self._page_events is not None and records:
                kind = "sync" if fetch_started_at is None else "fetch"
                await self._page_events(session, token_id, kind, records, now)
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
            stored = await session.execute(
                update(tokens)
                .where(tokens.c.id == token_id, tokens.c.lease_owner == worker)
                .values(values)
            )
            if rowcount(stored) != 1:
                await self._guard(session, token_id, worker)  # raises LeaseLost
        return result

    def prepare_fetch_page(
        self,
        token_id: int,
        records: Sequence[DeviceRecord],
        fetch_started_at: datetime,
        now: datetime,
    ) -> PreparedFetchPage:
        """A fetch page's rows, ready for :meth:`commit_page` (no database work: the engine
        builds them while the previous page is written; ``now`` stamps the rows)."""
        unique = latest_per_serial(records)
        live = [r for r in unique if r.op_type != "deleted"]
        stamp = self._stamp
        now_value, seen = stamp(now), stamp(fetch_started_at)
        return PreparedFetchPage(
            records=records,
            token_id=token_id,
            fetch_started_at=fetch_started_at,
            now=now,
            unique=unique,
            live=live,
            rows=[self._live_row(token_id, record, now_value, seen) for record in live],
        )

    async def _apply_fetch(
        self,
        session: AsyncSession,
        token_id: int,
        page: PreparedFetchPage,
        result: PageResult,
        assigning: bool,
    ) -> None:
        live = page.live
        found = await self._write_fetch_rows(session, token_id, page)
        for record in live:
            stored = found.get(record.serial_number)
            count_device(result, stored)
            if assigning:
                status = record.profile_status
                if stored is None or status in NEEDS_PROFILE or status is None:
                    result.to_assign.append(record.serial_number)
        gone = [r for r in page.unique if r.op_type == "deleted"]
        if gone:
            await self._deleted_upsert.execute(
                session, [self._gone_row(token_id, r, page.now) for r in gone]
            )
            result.deleted += len(gone)

    async def _write_fetch_rows(
        self, session: AsyncSession, token_id: int, page: PreparedFetchPage
    ) -> dict[str, Found]:
        """Upsert the page's live rows; returns what was stored of them before."""
        if self._counted_fetch is not None:
            params = {"probe_token_id": token_id}
            written = await self._fetch_upsert.execute_within(
                session, page.rows, self._counted_fetch, params
            )
            return {
                serial: Found(bool(deleted), bool(same), bool(stale))
                for serial, deleted, same, stale in written
            }
        known = await self._known(session, token_id, [r.serial_number for r in page.live])
        found = {
            record.serial_number: found_from(stored, record, row)
            for record, row in zip(page.live, page.rows, strict=True)
            if (stored := known.get(record.serial_number)) is not None
        }
        await self._fetch_upsert.execute(session, page.rows, converted=True)
        return found

    async def _apply_sync(
        self,
        session: AsyncSession,
        token_id: int,
        records: Sequence[DeviceRecord],
        now: datetime,
        result: PageResult,
    ) -> None:
        known = await self._known(session, token_id, [r.serial_number for r in records])
        now_value = self._stamp(now)
        live_rows: list[tuple[Any, ...]] = []
        gone_rows: list[list[Any]] = []
        history: list[tuple[Any, ...]] = []
        for record in records:
            stored = known.get(record.serial_number)
            if stored is not None and is_stale(stored, record):
                result.skipped_stale += 1
                continue
            op = (record.op_type or "added").lower()
            if op == "deleted":
                gone_rows.append(self._gone_row(token_id, record, now))
                result.deleted += 1
            else:
                row = self._live_row(token_id, record, now_value)
                count_device(result, None if stored is None else found_from(stored, record, row))
                # A `modified` for a device we do not hold is how ABM reports some moves.
                is_new = stored is None or stored.deleted
                if op == "added" or is_new or record.profile_status in NEEDS_PROFILE:
                    result.to_assign.append(record.serial_number)
                live_rows.append(row)
            history.append(
                (
                    token_id,
                    record.serial_number,
                    record.op_date or now,
                    "op",
                    op[:32],
                    record.profile_uuid,
                )
            )
        await self._live_upsert.execute(session, live_rows, converted=True)
        await self._deleted_upsert.execute(session, gone_rows)
        await self._history.execute(session, history)

    async def _known(
        self, session: AsyncSession, token_id: int, serials: Sequence[str]
    ) -> dict[str, StoredDevice]:
        """What is stored of the given serials of this token (rows as the driver gives them)."""
        rows = await probe_devices(session, token_id, serials, STORED_COLUMNS)
        return {row[0]: StoredDevice(row[1], bool(row[2]), row[3:]) for row in rows}

    def _live_row(
        self, token_id: int, record: DeviceRecord, now: Any, seen_in_fetch: Any = None
    ) -> tuple[Any, ...]:
        """A row of _LIVE_COLUMNS, then the derived columns, ready for the driver (timestamps
        through ``BulkWrite.stamp``; ``now`` and ``seen_in_fetch`` already are)."""
        stamp = self._stamp
        values = list(record.values)
        for i in _RECORD_TIMESTAMPS:
            if values[i] is not None:
                values[i] = stamp(values[i])
        for i, length in _RECORD_STRINGS:
            value = values[i]
            if value is not None and len(value) > length:
                values[i] = value[:length]
        op_date = None if record.op_date is None else stamp(record.op_date)
        op_type = (record.op_type or "added")[:_OP_TYPE_LENGTH]
        row = [token_id, record.serial_number, *values]
        row += (op_type, op_date, False, None, seen_in_fetch, now, now)
        for derive in self._derived:
            row.append(derive(record))
        return tuple(row)

    @staticmethod
    def _gone_row(token_id: int, record: DeviceRecord, now: datetime) -> list[Any]:
        """A row of _GONE_COLUMNS."""
        row = [token_id, record.serial_number]
        row += map(record.values.__getitem__, _IDENTITY_POSITIONS)
        row += ("deleted", record.op_date, True, record.op_date or now, now, now)
        return row

    async def _guard(self, session: AsyncSession, token_id: int, worker: str) -> None:
        """Raise LeaseLost unless ``worker`` holds this token's lease (checked in the same
        transaction as the write, so a takeover between pages cannot interleave)."""
        owner = (
            await session.execute(select(tokens.c.lease_owner).where(tokens.c.id == token_id))
        ).scalar()
        if owner != worker:
            raise LeaseLost(f"token {token_id} is leased by {owner!r}, not {worker!r}")


async def close_runs_of_ended_leases(
    session: AsyncSession, token_ids: Sequence[int], claimer: str, now: datetime
) -> int:
    """In the transaction that gives ``claimer`` the lease of these tokens: close as
    ``interrupted`` their runs still ``running`` under another worker. Such a run's lease has
    ended (given back, or expired: its process died), so it cannot commit another page.
    Returns how many were closed."""
    result = await session.execute(
        update(sync_runs)
        .where(
            sync_runs.c.token_id.in_(list(token_ids)),
            sync_runs.c.outcome == RunOutcome.RUNNING,
            sync_runs.c.worker.is_distinct_from(claimer),
        )
        .values(outcome=RunOutcome.INTERRUPTED, finished_at=now)
    )
    return rowcount(result)


def due_filter(now: datetime) -> Any:
    """Tokens whose sync is due and whose lease is free."""
    return and_(
        tokens.c.oauth_credentials.is_not(None),
        or_(tokens.c.next_sync_at.is_(None), tokens.c.next_sync_at <= now),
        or_(tokens.c.lease_expires_at.is_(None), tokens.c.lease_expires_at < now),
    )
