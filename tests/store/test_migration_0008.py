"""Migration 0008 on both backends: the profile error columns come and go, and a token whose last
error was a profile error keeps it as its profile error across the upgrade."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from adesync.store.database import Database
from adesync.store.tables import tokens
from tests.migrations import run_alembic, schema_differences

PROFILE_COLUMNS = {"profile_error_code", "profile_error_body", "profile_error_at"}


def _token_columns(connection: Connection) -> set[str]:
    return {str(column["name"]) for column in inspect(connection).get_columns("tokens")}


async def test_upgrade_copies_a_profile_error_and_downgrade_removes_the_columns(
    db: Database,
) -> None:
    when = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    try:
        await run_alembic(db, command.downgrade, "0007")
        async with db.engine.connect() as conn:
            assert not PROFILE_COLUMNS & await conn.run_sync(_token_columns)
        async with db.engine.begin() as conn:
            for name, code, body in (
                ("refused", "profile_invalid", '"CONFIG_URL_INVALID"'),
                ("outage", "apple_unavailable", "503"),
                ("fine", None, None),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO tokens (name, token_type, dep_url, created_at, updated_at, "
                        "last_error_code, last_error_body, last_error_at) "
                        "VALUES (:n, 'abm', 'http://127.0.0.1:9', :at, :at, :c, :b, :e)"
                    ),
                    {
                        "n": name,
                        "at": when.replace(tzinfo=None),
                        "c": code,
                        "b": body,
                        "e": when.replace(tzinfo=None) if code else None,
                    },
                )
        await run_alembic(db, command.upgrade, "0008")
        async with db.read() as session:
            rows = {
                row.name: (row.profile_error_code, row.profile_error_body, row.profile_error_at)
                for row in await session.execute(
                    select(
                        tokens.c.name,
                        tokens.c.profile_error_code,
                        tokens.c.profile_error_body,
                        tokens.c.profile_error_at,
                    )
                )
            }
        assert rows == {
            "refused": ("profile_invalid", '"CONFIG_URL_INVALID"', when),
            "outage": (None, None, None),
            "fine": (None, None, None),
        }
    finally:
        await run_alembic(db, command.upgrade, "head")
    assert [d for d in await schema_differences(db) if "profile_error" in repr(d)] == []
