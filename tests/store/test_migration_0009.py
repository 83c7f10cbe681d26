"""Migration 0009 on both backends: ``tokens.profile_error_uuid`` comes and goes, and a token
whose profile error predates it is taken to be about the default it had then."""

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


async def test_upgrade_names_the_default_of_an_old_profile_error_and_downgrade_drops_it(
    db: Database,
) -> None:
    when = datetime(2026, 11, 1, 12, 0, tzinfo=UTC).replace(tzinfo=None)
    try:
        await run_alembic(db, command.downgrade, "0008")
        async with db.engine.connect() as conn:
            assert "profile_error_uuid" not in await conn.run_sync(_token_columns)
        async with db.engine.begin() as conn:
            for name, code, default in (
                ("missing", "profile_not_found", "P-1"),
                ("fine", None, "P-2"),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO tokens (name, token_type, dep_url, created_at, updated_at, "
                        "default_profile_uuid, profile_error_code, profile_error_at) "
                        "VALUES (:n, 'abm', 'http://127.0.0.1:9', :at, :at, :d, :c, :e)"
                    ),
                    {"n": name, "at": when, "d": default, "c": code, "e": when if code else None},
                )
        await run_alembic(db, command.upgrade, "0009")
        async with db.read() as session:
            rows = dict(
                (await session.execute(select(tokens.c.name, tokens.c.profile_error_uuid))).all()
            )
        assert rows == {"missing": "P-1", "fine": None}
        await run_alembic(db, command.downgrade, "0008")
        async with db.engine.connect() as conn:
            assert "profile_error_uuid" not in await conn.run_sync(_token_columns)
    finally:
        await run_alembic(db, command.upgrade, "head")
    assert [d for d in await schema_differences(db) if "profile_error" in repr(d)] == []
