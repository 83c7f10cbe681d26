"""Database.shared_reads(): one task's reads share one session and transaction; a write of
that task ends it (so its next read sees the write); other tasks and nested reads read apart;
a failed statement leaves the next read clean. On both backends."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.store.database import Database
from adesync.store.tables import tokens


async def _add_token(db: Database, name: str) -> None:
    now = datetime.now(UTC)
    async with db.write() as session:
        await session.execute(
            tokens.insert().values(name=name, dep_url="u", created_at=now, updated_at=now)
        )


async def _read(db: Database) -> tuple[AsyncSession, int]:
    """The session a read() block got, and the number of tokens it saw."""
    async with db.read() as session:
        count = (await session.execute(select(func.count()).select_from(tokens))).scalar_one()
        return session, int(count)


async def test_reads_in_the_block_share_one_session_and_end_with_it(db: Database) -> None:
    await _add_token(db, "a")
    async with db.shared_reads():
        first, seen = await _read(db)
        second, _ = await _read(db)
        assert first is second and seen == 1
        assert first.in_transaction()
    assert not first.in_transaction()
    outside, _ = await _read(db)
    assert outside is not first


async def test_a_write_in_the_block_is_seen_by_the_next_read(db: Database) -> None:
    async with db.shared_reads():
        _, before = await _read(db)
        await _add_token(db, "a")
        _, after = await _read(db)
    assert (before, after) == (0, 1)


async def test_a_write_gives_the_shared_reads_connection_back_first(db: Database) -> None:
    """Else tasks that have read and now wait to write could hold every pooled connection."""
    pool = db.engine.sync_engine.pool
    async with db.shared_reads():
        await _read(db)
        assert pool.checkedout() == 1  # type: ignore[attr-defined]
        async with db.write() as session:
            await session.execute(select(1))
            assert pool.checkedout() == 1  # type: ignore[attr-defined]


async def test_other_tasks_and_nested_reads_get_their_own_session(db: Database) -> None:
    async with db.shared_reads():
        mine, _ = await _read(db)
        theirs, _ = await asyncio.create_task(_read(db))
        assert theirs is not mine
        async with db.read() as outer:
            assert outer is mine
            inner, _ = await _read(db)
            assert inner is not mine


async def test_a_failed_statement_leaves_the_next_shared_read_clean(db: Database) -> None:
    await _add_token(db, "a")
    async with db.shared_reads():
        with pytest.raises(DBAPIError):
            async with db.read() as session:
                await session.execute(text("SELECT * FROM no_such_table"))
        _, seen = await _read(db)
    assert seen == 1


async def test_another_connections_commit_is_seen_after_the_block(db: Database) -> None:
    other = Database(str(db.url))
    try:
        async with db.shared_reads():
            _, before = await _read(db)
            await _add_token(other, "b")
        _, after = await _read(db)
        assert (before, after) == (0, 1)
    finally:
        await other.dispose()


async def test_sqlite_three_shared_reads_take_four_trips(
    sqlite_db: Database, sqlite_trips: Counter[str]
) -> None:
    """BEGIN with the first statement, one trip per statement, one ROLLBACK at the end (three
    reads of their own take six)."""
    db = sqlite_db
    await _read(db)  # connect first: PRAGMAs are trips too
    sqlite_trips.clear()
    async with db.shared_reads():
        for _ in range(3):
            await _read(db)
    assert sum(sqlite_trips.values()) == 4, sqlite_trips


async def test_after_end_reads_are_their_own_and_the_connection_is_back(db: Database) -> None:
    pool = db.engine.sync_engine.pool
    async with db.shared_reads() as reads:
        first, _ = await _read(db)
        await reads.end()
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        second, _ = await _read(db)
        third, _ = await _read(db)
        assert len({id(first), id(second), id(third)}) == 3
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
