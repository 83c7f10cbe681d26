"""Migration 0013 on both backends: ``tokens.dep_url_checked`` comes and goes, and tokens
stored before it (set up by an administrator) keep their Apple URL unchecked."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from adesync.store.database import Database
from adesync.store.tables import tokens
from tests.migrations import run_alembic, schema_differences


def _token_columns(connection: Connection) -> set[str]:
    return {str(column["name"]) for column in inspect(connection).get_columns("tokens")}


async def test_tokens_stored_before_keep_their_url_unchecked(db: Database) -> None:
    when = datetime(2026, 11, 1, 12, 0, tzinfo=UTC).replace(tzinfo=None)
    try:
        await run_alembic(db, command.downgrade, "0012")
        async with db.engine.connect() as conn:
            assert "dep_url_checked" not in await conn.run_sync(_token_columns)
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO tokens (name, token_type, dep_url, created_at, updated_at) "
                    "VALUES ('lab', 'abm', 'http://127.0.0.1:9', :at, :at)"
                ),
                {"at": when},
            )
        await run_alembic(db, command.upgrade, "0013")
        async with db.read() as session:
            rows = (await session.execute(select(tokens.c.name, tokens.c.dep_url_checked))).all()
        assert [tuple(row) for row in rows] == [("lab", False)]
        await run_alembic(db, command.downgrade, "0012")
        async with db.engine.connect() as conn:
            assert "dep_url_checked" not in await conn.run_sync(_token_columns)
    finally:
        await run_alembic(db, command.upgrade, "head")
    assert [d for d in await schema_differences(db) if "dep_url" in repr(d)] == []
