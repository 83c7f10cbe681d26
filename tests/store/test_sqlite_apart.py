"""Page writes on SQLite run in a child process (adesync.store.sqlite_apart): the transaction
rules are those of any write, a failure changes nothing, and a killed parent or child loses
nothing that was committed and commits nothing that was not."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, ProgrammingError

from adesync.store.database import Database
from adesync.store.sqlite_apart import ApartConnection, ChildConnection
from adesync.store.tables import tokens


def _token(name: str) -> dict[str, object]:
    now = datetime.now(UTC)
    return {"name": name, "dep_url": "u", "created_at": now, "updated_at": now}


async def _names(db: Database) -> list[str]:
    async with db.read() as session:
        return list((await session.execute(select(tokens.c.name).order_by("name"))).scalars())


async def _child_of(db: Database) -> ChildConnection:
    async with db.page_write() as session:
        raw = await (await session.connection()).get_raw_connection()
        connection = raw.dbapi_connection
        assert isinstance(connection, ApartConnection)
        child = connection._connection
        assert isinstance(child, ChildConnection)
        return child


async def test_a_page_write_runs_in_a_child_process_and_commits(sqlite_db: Database) -> None:
    db = sqlite_db
    async with db.page_write() as session:
        await session.execute(tokens.insert().values(_token("a")))
        await session.execute(tokens.insert().values(_token("b")))
        # Not visible to other connections before the commit.
        assert await _names(db) == []
        stored = await session.execute(select(tokens.c.name, tokens.c.created_at))
        assert {name for name, _ in stored} == {"a", "b"}
    assert await _names(db) == ["a", "b"]
    child = await _child_of(db)
    assert child._process.pid != os.getpid()
    # Timestamps written in the child read back as those written here.
    async with db.read() as session:
        created = (await session.execute(select(tokens.c.created_at))).scalars().first()
    assert created is not None and created.tzinfo is not None


async def test_a_failed_page_write_changes_nothing(sqlite_db: Database) -> None:
    db = sqlite_db
    async with db.write() as session:
        await session.execute(tokens.insert().values(_token("a")))
    with pytest.raises(IntegrityError):
        async with db.page_write() as session:
            await session.execute(tokens.insert().values(_token("b")))
            await session.execute(tokens.insert().values(_token("a")))  # unique name
    assert await _names(db) == ["a"]
    # The child is still usable.
    async with db.page_write() as session:
        await session.execute(tokens.insert().values(_token("c")))
    assert await _names(db) == ["a", "c"]


async def test_a_killed_child_fails_the_write_and_the_next_write_gets_a_new_one(
    sqlite_db: Database,
) -> None:
    db = sqlite_db
    child = await _child_of(db)
    with pytest.raises(ProgrammingError, match="writer process ended") as failed:
        async with db.page_write() as session:
            await session.execute(tokens.insert().values(_token("a")))
            child._process.kill()
            await child._process.wait()
            await session.execute(tokens.insert().values(_token("b")))
    assert failed.value.connection_invalidated
    assert await _names(db) == []
    async with db.page_write() as session:
        await session.execute(tokens.insert().values(_token("c")))
    assert await _names(db) == ["c"]
    assert (await _child_of(db)) is not child


_KILLED_MID_WRITE = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from datetime import UTC, datetime
    from adesync.store.database import Database
    from adesync.store.tables import tokens

    async def main() -> None:
        db = Database(sys.argv[1])
        now = datetime.now(UTC)
        async with db.write() as session:
            await session.execute(
                tokens.insert().values(name="kept", dep_url="u", created_at=now, updated_at=now)
            )
        async with db.page_write() as session:
            await session.execute(
                tokens.insert().values(name="lost", dep_url="u", created_at=now, updated_at=now)
            )
            raw = await (await session.connection()).get_raw_connection()
            print(raw.dbapi_connection._connection._process.pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)


async def test_a_parent_killed_mid_write_commits_nothing_and_leaves_no_child(
    sqlite_db: Database, tmp_path: Path
) -> None:
    db = sqlite_db
    script = tmp_path / "killed.py"
    script.write_text(_KILLED_MID_WRITE)
    finished = subprocess.run(
        [sys.executable, str(script), str(db.url)], capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == -signal.SIGKILL, finished.stderr
    child = Path(f"/proc/{int(finished.stdout.split()[0])}")
    # The child sees its input end, rolls back and exits.
    for _ in range(200):
        if not child.exists() or "State:\tZ" in (child / "status").read_text():
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the writer process outlived its parent")
    assert await _names(db) == ["kept"]
    # The write lock is free.
    async with db.page_write() as session:
        await session.execute(tokens.insert().values(_token("after")))
    assert await _names(db) == ["after", "kept"]
    async with db.read() as session:
        assert (await session.execute(select(func.count()).select_from(tokens))).scalar_one() == 2
