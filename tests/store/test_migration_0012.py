"""Migration 0012 on both backends: sessions of the old CSRF scheme end, each new session has a
CSRF secret, and ``login_failures`` comes and goes."""

from __future__ import annotations

from datetime import datetime

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from adesync.store.database import Database
from tests.migrations import run_alembic, schema_differences


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_ends_old_sessions_and_downgrade_removes_what_it_added(
    db: Database,
) -> None:
    when = datetime(2026, 12, 1, 12, 0)
    try:
        await run_alembic(db, command.downgrade, "0011")
        async with db.engine.begin() as conn:
            assert "login_failures" not in await conn.run_sync(_tables)
            await conn.execute(
                text(
                    "INSERT INTO users (name, role, password_hash, created_at, "
                    "password_changed_at) VALUES ('alice', 'admin', 'x', :at, :at)"
                ),
                {"at": when},
            )
            await conn.execute(
                text(
                    "INSERT INTO web_sessions (id_hash, user_id, created_at, expires_at) "
                    "SELECT 'h', id, :at, :at FROM users"
                ),
                {"at": when},
            )
        await run_alembic(db, command.upgrade, "0012")
        async with db.engine.connect() as conn:
            assert "login_failures" in await conn.run_sync(_tables)
            sessions = (await conn.execute(text("SELECT count(*) FROM web_sessions"))).scalar()
            assert sessions == 0
        await run_alembic(db, command.downgrade, "0011")
        async with db.engine.connect() as conn:
            assert "login_failures" not in await conn.run_sync(_tables)
    finally:
        await run_alembic(db, command.upgrade, "head")
    assert [d for d in await schema_differences(db) if "web_sessions" in repr(d)] == []
    assert [d for d in await schema_differences(db) if "login_failures" in repr(d)] == []
