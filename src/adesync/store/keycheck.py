"""The key-check value in the database, and re-sealing every secret under a new key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import Select, select, update
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


def key_rotated() -> SecretKeyError:
    return SecretKeyError(
        "The secret key was rotated while this ran; nothing was changed: run it again.",
        code="secret_key_rotated",
    )


def _key_check_row(*, exclusive: bool) -> Select[str]:
    # FOR SHARE / FOR UPDATE on PostgreSQL; SQLite (whose write transactions run one at a
    # time anyway) compiles no FOR clause.
    return select(meta.c.value).where(meta.c.key == KEY_CHECK).with_for_update(read=not exclusive)


async def hold_key(session: AsyncSession, box: SecretBox) -> None:
    """Call first in a write transaction that stores values sealed with ``box``: it waits for a
    rotation under way and makes a later one wait for this transaction (a lock on the key-check
    row), then raises SecretKeyError if ``box`` is no longer the database's key, so no value is
    ever stored sealed with a key the database has left."""
    current = (await session.execute(_key_check_row(exclusive=False))).scalar()
    if current is not None and current != box.key_check:
        raise key_rotated()


def key_mismatch() -> SecretKeyError:
    return SecretKeyError(
        "The secret key does not match this database: it was set up with another key. "
        "Use the same ADESYNC_SECRET_KEY or secret.key on every machine that shares the database "
        "(after a key rotation the new key is in secret.key of the machine that rotated it, or in "
        "the file its --new-key-file named)."
    )


def secret_columns() -> list[tuple[str, str]]:
    """Every (table, column) holding sealed bytes, found from the column ``info``."""
    return [
        (table.name, column.name)
        for table in metadata.sorted_tables
        for column in table.columns
        if column.info.get("secret")
    ]


async def holds_secrets(db: Database) -> bool:
    """Whether the database records a key check or holds any sealed value (so that only the
    key it was sealed with may be used, never a new one)."""
    async with db.read() as session:
        if await stored_key_check(session) is not None:
            return True
        for table_name, column_name in secret_columns():
            column = metadata.tables[table_name].c[column_name]
            found = await session.execute(select(column).where(column.is_not(None)).limit(1))
            if found.first() is not None:
                return True
    return False


async def rotate_secrets(
    db: Database,
    old: SecretBox,
    new: SecretBox,
    *,
    before_commit: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Re-seal every secret under ``new`` in one transaction; returns how many values moved.
    ``before_commit`` runs inside the transaction once every value is re-sealed."""
    moved = 0
    async with db.write() as session:
        # Waits for writers holding the key (hold_key) to commit, so their rows are re-sealed.
        current = (await session.execute(_key_check_row(exclusive=True))).scalar()
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
        if before_commit is not None:
            await before_commit()
    return moved
