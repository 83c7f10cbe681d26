"""Bulk device writes and serial lookups through the driver, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from adesync.enrollment.jobs import refresh_after_page
from adesync.store.assignment_repo import AssignmentRepo
from adesync.store.bulk import BulkWrite, probe_devices, sqlite_datetime
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.store.sync_repo import SyncRepo
from adesync.store.tables_sync import devices
from adesync.store.types import from_stored_datetime
from tests.sync.helpers import T0, insert_token, record

COLUMNS = ("token_id", "serial_number", "model", "deleted", "last_op_date", "first_seen_at")
COLUMNS += ("updated_at",)


def test_sqlite_text_is_what_sqlalchemy_writes() -> None:
    plus_five = timezone(timedelta(hours=5))
    assert (
        sqlite_datetime(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02 03:04:05.000000"
    )
    assert sqlite_datetime(datetime(2026, 1, 2, 8, 4, 5, 7, tzinfo=plus_five)) == (
        "2026-01-02 03:04:05.000007"
    )
    with pytest.raises(ValueError, match="naive"):
        sqlite_datetime(datetime(2026, 1, 2))


async def test_rows_written_in_bulk_read_back_like_rows_sqlalchemy_wrote(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    plus_two = timezone(timedelta(hours=2))
    stamp = datetime(2026, 3, 4, 12, 30, 1, 250, tzinfo=plus_two)
    write = BulkWrite(db, devices, COLUMNS)
    async with db.write() as session:
        await write.execute(
            session,
            [
                (token_id, "BULK1", "iPad", False, stamp, T0, T0),
                (token_id, "BULK2", None, True, None, T0, T0),
            ],
        )
        await session.execute(
            insert(devices).values(
                token_id=token_id,
                serial_number="CORE1",
                model="iPad",
                deleted=False,
                last_op_date=stamp,
                first_seen_at=T0,
                updated_at=T0,
            )
        )
    async with db.read() as session:
        rows = {
            r.serial_number: r
            for r in await session.execute(select(devices).where(devices.c.token_id == token_id))
        }
        # Both kinds of row compare as the same instant in SQL (SQLite compares text).
        same = await session.execute(
            select(devices.c.serial_number).where(devices.c.last_op_date == stamp)
        )
        assert sorted(same.scalars()) == ["BULK1", "CORE1"]
    assert rows["BULK1"].last_op_date == stamp == rows["CORE1"].last_op_date
    assert rows["BULK1"].last_op_date.tzinfo == UTC
    assert (rows["BULK1"].deleted, rows["BULK2"].deleted) == (False, True)
    assert rows["BULK2"].model is None and rows["BULK2"].last_op_date is None


async def test_an_upsert_updates_only_where_its_condition_holds(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    upsert = BulkWrite(
        db,
        devices,
        COLUMNS,
        conflict=("token_id", "serial_number"),
        update=("model", "last_op_date"),
        where="devices.last_op_date <= excluded.last_op_date",
    )
    later = T0 + timedelta(hours=1)
    async with db.write() as session:
        await upsert.execute(session, [(token_id, "A", "old", False, later, T0, T0)])
    async with db.write() as session:
        await upsert.execute(
            session,
            [
                (token_id, "A", "stale", False, T0, T0, T0),  # older: skipped
                (token_id, "B", "new", False, T0, T0, T0),
            ],
        )
    async with db.write() as session:
        await upsert.execute(session, [(token_id, "B", "newer", False, later, T0, T0)])
    async with db.read() as session:
        models = {
            serial: model
            for serial, model in await session.execute(
                select(devices.c.serial_number, devices.c.model)
            )
        }
    assert models == {"A": "old", "B": "newer"}


async def test_probing_serials_finds_only_this_tokens_rows(db: Database, box: SecretBox) -> None:
    mine = await insert_token(db, box, "mine")
    other = await insert_token(db, box, "other")
    write = BulkWrite(db, devices, COLUMNS)
    # More serials than SQLite takes in one statement's IN list chunk.
    serials = [f"S{n:05d}" for n in range(12_000)]
    async with db.write() as session:
        await write.execute(session, [(mine, s, None, False, T0, T0, T0) for s in serials[::2]])
        await write.execute(session, [(other, "S00001", None, False, None, T0, T0)])
    async with db.read() as session:
        found = await probe_devices(session, mine, serials, ("last_op_date",))
        assert await probe_devices(session, mine, [], ("deleted",)) == []
    assert sorted(s for s, _ in found) == serials[::2]
    assert {from_stored_datetime(value) for _, value in found} == {T0}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_page_looks_its_serials_up_by_index_not_by_scanning_the_token(
    db: Database, box: SecretBox
) -> None:
    """The bug: ``token_id = ? AND serial_number IN (...)`` made PostgreSQL, which has no
    statistics for a token whose first fetch is running, read all of the token's rows for
    every page (quadratic time). Each lookup of a page (the device states it updates, the
    assignment answers it records, the enrollment states the page hook re-derives) must read
    about as many rows as it asks for."""
    token_id = await insert_token(db, box)
    serials = [f"D{n:05d}" for n in range(30_000)]
    write = BulkWrite(db, devices, COLUMNS)
    async with db.write() as session:
        await write.execute(session, [(token_id, s, None, False, T0, T0, T0) for s in serials])
    assignments = AssignmentRepo(db)
    await assignments.record_results(token_id, "P1", dict.fromkeys(serials, "SUCCESS"), None, T0)
    page = serials[:100]
    lookups: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if (verb == "SELECT" and "serial" in statement) or (verb == "UPDATE" and not many):
            lookups.append((statement, params))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        later = T0 + timedelta(hours=1)
        await SyncRepo(db, box).commit_page(
            token_id,
            "w1",
            [record(s, "modified", later) for s in page],
            "c1",
            fetch_started_at=None,
            completes_fetch=False,
            now=later,
        )
        await refresh_after_page(db, token_id, "sync", [record(s) for s in page])
        assert await assignments.waiting(token_id, page, later) == set()
        answers = {s: "FAILED" if n % 2 else "SUCCESS" for n, s in enumerate(page)}
        await assignments.record_results(token_id, "P2", answers, None, T0)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    assert len(lookups) >= 6, lookups
    async with db.read() as session:  # rolled back: the EXPLAIN ANALYZEd updates change nothing
        connection = await session.connection()
        for statement, params in lookups:
            explain = "EXPLAIN (ANALYZE, FORMAT JSON) " + statement
            plan = (await connection.exec_driver_sql(explain, params)).scalar_one()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            assert _rows_read(plan[0]["Plan"]) <= 2 * len(page), json.dumps(plan, indent=1)


def _rows_read(node: dict[str, Any]) -> int:
    """Rows the plan's scans of the two tables produced, before any filter (all loops)."""
    own = 0
    if node.get("Relation Name") in ("devices", "assignments"):
        loops = int(node.get("Actual Loops", 1))
        own = int(node.get("Actual Rows", 0)) * loops + int(node.get("Rows Removed by Filter", 0))
        own += int(node.get("Rows Removed by Index Recheck", 0))
    children = node.get("Plans", [])
    return own + sum(_rows_read(child) for child in children)


async def test_apple_strings_longer_than_their_columns_are_clipped(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    repo = SyncRepo(db, box)
    long = {"description": "D" * 300, "asset_tag": "A" * 200, "color": "C" * 70}
    await repo.commit_page(
        token_id,
        "w1",
        [record("LONG1", "added", T0, **long), record("LONG2", "deleted", T0, **long)],
        "c1",
        fetch_started_at=None,
        completes_fetch=False,
        now=T0,
    )
    # A fetch page (its rows cut as they are built, also when built ahead of the commit).
    await repo.start_full_fetch(token_id, "w1", T0)
    fetched = [record("LONG3", "x" * 40, T0, **long)]
    await repo.commit_page(
        token_id, "w1", fetched, "c2", fetch_started_at=T0, completes_fetch=False, now=T0,
        prepared=repo.prepare_fetch_page(token_id, fetched, T0, T0),
    )  # fmt: skip
    async with db.read() as session:
        rows = {r.serial_number: r for r in await session.execute(select(devices))}
    assert (len(rows["LONG1"].description), len(rows["LONG1"].asset_tag)) == (255, 128)
    assert (len(rows["LONG2"].description), len(rows["LONG2"].color)) == (255, 64)
    assert (len(rows["LONG3"].description), len(rows["LONG3"].color)) == (255, 64)
    assert rows["LONG3"].last_op_type == "x" * 16
