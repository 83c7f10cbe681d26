"""The key-check value in the database, and re-sealing every secret under a new key."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.store.database import Database
from adesync.store.schema import metadata
from adesync.store.secrets import SecretBox, SecretKeyError
from adesync.store.tables import meta

KEY_CHECK = "secret_key_check"


async def stored_key_check(session: AsyncSession) -> str | None:
    return (await session.execute(select(meta.c.value).where(meta.c.key == KEY_CHECK))).scalar()


async def _write_key_check(session: AsyncSession, box: SecretBox) -> None:
    current = await stored_key_check(session)
    if current is None:
        await session.execute(meta.insert().values(key=KEY_CHECK, value=box.key_check))
    else:
        await session.execute(
            update(meta).where(meta.c.key == KEY_CHECK).values(value=box.key_check)
        )


async def adopt_key(db: Database, box: SecretBox) -> None:
    """Record ``box`` as this database's key if none is recorded; else verify it matches."""
    async with db.write() as session:
        current = await stored_key_check(session)
        if current is None:
            await _write_key_check(session, box)
        elif current != box.key_check:
            raise key_mismatch()


async def verify_key(db: Database, box: SecretBox) -> None:
    """Raise SecretKeyError unless ``box`` is the key this database's secrets are sealed with."""
    async with db.read() as session:
        current = await stored_key_check(session)
    if current is not None and current != box.key_check:
        raise key_mismatch()


def key_mismatch() -> SecretKeyError:
    return SecretKeyError(
        "The secret key does not match this database: it was set up with another key. "
        "Use the same ADESYNC_SECRET_KEY or secret.key on every machine that shares the database."
    )


def secret_columns() -> list[tuple[str, str]]:
    """Every (table, column) holding sealed bytes, found from the column ``info``."""
    return [
        (table.name, column.name)
        for table in metadata.sorted_tables
        for column in table.columns
        if column.info.get("secret")
    ]


async def rotate_secrets(db: Database, old: SecretBox, new: SecretBox) -> int:
    """Re-seal every secret under ``new`` in one transaction; returns how many values moved."""
    moved = 0
    async with db.write() as session:
        current = await stored_key_check(session)
        if current is not None and current != old.key_check:
            raise key_mismatch()
        for table_name, column_name in secret_columns():
            table = metadata.tables[table_name]
            column = table.c[column_name]
            pk = next(iter(table.primary_key.columns))
            rows = (await session.execute(select(pk, column).where(column.is_not(None)))).all()
            for row_id, sealed in rows:
                resealed = new.seal(old.open(sealed))
                await session.execute(
                    update(table).where(pk == row_id).values({column_name: resealed})
                )
                moved += 1
        await _write_key_check(session, new)
    return moved
