"""Database.read() and write() under concurrency, on both backends; SQLite's transaction rules
(BEGIN IMMEDIATE for writes, one snapshot per read) and its one-trip driver adapter."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from adesync.store.database import SQLITE_SOFT_HEAP_LIMIT, Database
from adesync.store.tables import tokens

BURST = 16


async def _add_token(db: Database, name: str) -> None:
    now = datetime.now(UTC)
    async with db.write() as session:
        await session.execute(
            tokens.insert().values(name=name, dep_url="u", created_at=now, updated_at=now)
        )


async def _count(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(select(func.count()).select_from(tokens))).scalar_one())


async def test_concurrent_read_modify_write_loses_nothing(db_url: str) -> None:
    """Two handles (as two processes would) add 1 to a counter 40 times in all, reading it
    first: on SQLite BEGIN IMMEDIATE makes them queue; PostgreSQL locks the row (FOR UPDATE)."""
    first, second = Database(db_url), Database(db_url)
    try:
        await _add_token(first, "counter")
        query = select(tokens.c.consecutive_failures).where(tokens.c.name == "counter")
        if first.is_postgresql:
            query = query.with_for_update()

        async def bump(db: Database) -> None:
            async with db.write() as session:
                value = (await session.execute(query)).scalar_one()
                await asyncio.sleep(0)
                await session.execute(
                    update(tokens)
                    .where(tokens.c.name == "counter")
                    .values(consecutive_failures=value + 1)
                )

        await asyncio.gather(*(bump(db) for _ in range(20) for db in (first, second)))
        async with first.read() as session:
            assert (await session.execute(query)).scalar_one() == 40
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_failed_statement_leaves_the_pool_usable(db: Database) -> None:
    await _add_token(db, "a")
    for _ in range(3):
        with pytest.raises(IntegrityError):
            await _add_token(db, "a")
    await asyncio.gather(*(_add_token(db, f"b{i}") for i in range(5)))
    assert await _count(db) == 6


async def test_reads_and_writes_interleave(db: Database) -> None:
    async def writer(i: int) -> None:
        await _add_token(db, f"t{i}")

    async def reader() -> int:
        return await _count(db)

    counts = await asyncio.gather(*(writer(i) if i % 2 else reader() for i in range(40)))
    assert all(isinstance(n, int) and 0 <= n <= 20 for n in counts if n is not None)
    assert await _count(db) == 20


async def test_cancelled_reads_leave_no_transaction_behind(db: Database) -> None:
    await _add_token(db, "a")

    async def keep_reading() -> None:
        while True:
            await _count(db)

    tasks = [asyncio.create_task(keep_reading()) for _ in range(8)]
    await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Every pooled connection must start its next transaction cleanly.
    await asyncio.gather(*(_add_token(db, f"n{i}") for i in range(8)))
    assert await _count(db) == 9


async def test_sqlite_read_sees_one_snapshot(sqlite_db: Database) -> None:
    """BEGIN goes with a read's first statement: later statements of the same read do not see
    what another connection committed in between."""
    db = sqlite_db
    other = Database(str(db.url))
    try:
        await _add_token(db, "a")
        async with db.read() as session:
            before = (await session.execute(select(func.count()).select_from(tokens))).scalar()
            await _add_token(other, "b")
            after = (await session.execute(select(func.count()).select_from(tokens))).scalar()
        assert before == after == 1
        assert await _count(db) == 2
    finally:
        await other.dispose()


async def test_sqlite_write_holds_the_write_lock_from_its_first_statement(
    sqlite_db: Database,
) -> None:
    """BEGIN IMMEDIATE: a write that only read so far already keeps other writers waiting."""
    db = sqlite_db
    other = Database(str(db.url))
    try:
        await _add_token(db, "a")
        order: list[str] = []

        async def second() -> None:
            await _add_token(other, "b")
            order.append("second wrote")

        async with db.write() as session:
            await session.execute(select(tokens.c.id))
            waiting = asyncio.create_task(second())
            await asyncio.sleep(0.3)
            order.append("first commits")
        await waiting
        assert order == ["first commits", "second wrote"]
        assert await _count(db) == 2
    finally:
        await other.dispose()


async def test_sqlite_one_statement_read_takes_two_trips(
    sqlite_db: Database, sqlite_trips: Counter[str]
) -> None:
    """Statement and BEGIN in one trip to aiosqlite's thread, then ROLLBACK; nothing else (the
    pool's own rollback is skipped once the session rolled back)."""
    db = sqlite_db
    trips = sqlite_trips
    await _count(db)  # connect first: PRAGMAs are trips too
    trips.clear()
    assert await _count(db) == 0
    assert sum(trips.values()) == 2, trips
    trips.clear()
    async with db.write():
        pass  # nothing written: no trip at all
    assert sum(trips.values()) == 0, trips


async def test_sqlite_executemany_and_rowcount(sqlite_db: Database) -> None:
    db = sqlite_db
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    async with db.write() as session:
        conn = await session.connection()
        await conn.exec_driver_sql(
            "INSERT INTO tokens (name, dep_url, created_at, updated_at) VALUES (?, ?, ?, ?)",
            [(f"m{i}", "u", now, now) for i in range(5)],
        )
        result = await conn.execute(text("UPDATE tokens SET dep_url = 'v' WHERE name > 'm1'"))
        assert result.rowcount == 3  # type: ignore[attr-defined]
    assert await _count(db) == 5


async def test_sqlite_binds_none_and_bools_as_null_and_integers(sqlite_db: Database) -> None:
    # The driver registers adapters for None and bool (a shortcut past sqlite3's adapter
    # search); what reaches the database must be what it was without them.
    db = sqlite_db
    now = datetime.now(UTC)
    async with db.write() as session:
        conn = await session.connection()
        stamp = now.replace(tzinfo=None).isoformat(sep=" ")
        await conn.exec_driver_sql(
            "INSERT INTO tokens (name, dep_url, cursor, terms_not_accepted, token_rejected, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [("t1", "u", None, True, False, stamp, stamp)],
        )
        stored = await conn.exec_driver_sql(
            "SELECT typeof(cursor), cursor, typeof(terms_not_accepted), terms_not_accepted, "
            "token_rejected FROM tokens WHERE name = 't1'"
        )
        assert stored.one() == ("null", None, "integer", 1, 0)
    async with db.read() as session:
        row = (await session.execute(select(tokens).where(tokens.c.name == "t1"))).one()
    assert row.cursor is None
    assert row.terms_not_accepted is True
    assert row.token_rejected is False


async def test_sqlite_reuses_connections_across_bursts_of_concurrent_reads(
    sqlite_db: Database,
) -> None:
    """Sixteen reads at once (a serve worker's share of 20 clients, unevenly spread), twice: the
    second burst opens no connection; and every connection caps SQLite's memory in the process
    (the soft heap limit), whatever its cache size."""
    db = sqlite_db
    opened: list[object] = []

    def on_connect(conn: object, _record: object) -> None:
        opened.append(conn)

    async def burst() -> set[int]:
        inside = 0
        everyone_in = asyncio.Event()

        async def read() -> int:
            nonlocal inside
            async with db.read() as session:
                limit = (await session.execute(text("PRAGMA soft_heap_limit"))).scalar_one()
                inside += 1
                if inside == BURST:
                    everyone_in.set()
                await everyone_in.wait()
                return int(limit)

        return set(await asyncio.gather(*(read() for _ in range(BURST))))

    event.listen(db.engine.sync_engine, "connect", on_connect)
    try:
        assert await burst() == {SQLITE_SOFT_HEAP_LIMIT}
        after_first = len(opened)
        assert await burst() == {SQLITE_SOFT_HEAP_LIMIT}
    finally:
        event.remove(db.engine.sync_engine, "connect", on_connect)
    assert len(opened) == after_first


async def test_postgresql_sessions_run_without_jit_and_keep_url_options(
    postgres_url: str,
) -> None:
    """JIT is off for adesync's connections (see Database); options in the URL still apply."""
    url = make_url(postgres_url).update_query_dict({"options": "-c statement_timeout=12345"})
    db = Database(url.render_as_string(hide_password=False))
    try:
        async with db.read() as session:
            assert (await session.execute(text("SHOW jit"))).scalar() == "off"
            timeout = (await session.execute(text("SHOW statement_timeout"))).scalar()
            assert timeout == "12345ms"
    finally:
        await db.dispose()
