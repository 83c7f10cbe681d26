"""A writer that seals values cannot store them under a key a rotation has just left."""

from __future__ import annotations

import asyncio

import pytest

from adesync.store.database import Database
from adesync.store.keycheck import adopt_key, hold_key, rotate_secrets
from adesync.store.secrets import SecretBox, SecretKeyError
from adesync.store.tables_web import web_secrets


async def test_a_writer_waits_for_a_rotation_under_way_and_is_then_refused(
    db: Database, box: SecretBox
) -> None:
    await adopt_key(db, box)
    paused, go = asyncio.Event(), asyncio.Event()

    async def at_commit() -> None:
        paused.set()
        await go.wait()

    new = SecretBox.generate()
    rotation = asyncio.create_task(rotate_secrets(db, box, new, before_commit=at_commit))
    await paused.wait()

    async def write_with_the_old_key() -> None:
        async with db.write() as session:
            await hold_key(session, box)
            await session.execute(web_secrets.insert().values(name="x", value=box.seal(b"v")))

    writer = asyncio.create_task(write_with_the_old_key())
    await asyncio.sleep(0.3)
    assert not writer.done()  # held until the rotation commits
    go.set()
    await rotation
    with pytest.raises(SecretKeyError, match="rotated while this ran"):
        await writer
    async with db.read() as session:
        assert (await session.execute(web_secrets.select())).all() == []


async def test_a_writer_with_the_current_key_goes_ahead(db: Database, box: SecretBox) -> None:
    await adopt_key(db, box)
    async with db.write() as session:
        await hold_key(session, box)
