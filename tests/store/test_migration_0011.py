"""Migration 0011 on both backends: ``sync_runs.error_detail``/``error_reference`` and
``tokens.last_error_detail``/``last_error_reference`` come and go; runs and errors recorded
before it keep their values and read NULL detail."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_sync import sync_runs
from tests.migrations import run_alembic, schema_differences

ADDED = {
    "sync_runs": {"error_detail", "error_reference"},
    "tokens": {"last_error_detail", "last_error_reference"},
}


def _columns(connection: Connection) -> dict[str, set[str]]:
    found = inspect(connection)
    return {
        table: {str(column["name"]) for column in found.get_columns(table)} & added
        for table, added in ADDED.items()
    }


async def test_upgrade_keeps_earlier_errors_with_no_detail_and_downgrade_removes_the_columns(
    db: Database,
) -> None:
    when = datetime(2026, 11, 1, 12, 0)
    try:
        await run_alembic(db, command.downgrade, "0010")
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_columns) == {"sync_runs": set(), "tokens": set()}
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO tokens (name, token_type, dep_url, created_at, updated_at, "
                    "last_error_code, last_error_at) VALUES ('north', 'abm', "
                    "'http://127.0.0.1:9', :at, :at, 'apple_unavailable', :at)"
                ),
                {"at": when},
            )
            await conn.execute(
                text(
                    "INSERT INTO sync_runs (token_id, kind, trigger, started_at, outcome, "
                    "error_code) SELECT id, 'sync', 'manual', :at, 'error', 'apple_unavailable' "
                    "FROM tokens WHERE name = 'north'"
                ),
                {"at": when},
            )
        await run_alembic(db, command.upgrade, "0011")
        async with db.read() as session:
            run = (
                await session.execute(
                    select(
                        sync_runs.c.started_at,
                        sync_runs.c.error_code,
                        sync_runs.c.error_detail,
                        sync_runs.c.error_reference,
                    )
                )
            ).one()
            token = (
                await session.execute(
                    select(
                        tokens.c.last_error_code,
                        tokens.c.last_error_detail,
                        tokens.c.last_error_reference,
                    )
                )
            ).one()
        assert tuple(run) == (when.replace(tzinfo=UTC), "apple_unavailable", None, None)
        assert tuple(token) == ("apple_unavailable", None, None)
        await run_alembic(db, command.downgrade, "0010")
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_columns) == {"sync_runs": set(), "tokens": set()}
    finally:
        await run_alembic(db, command.upgrade, "head")
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_columns) == ADDED
    differences = [d for d in await schema_differences(db) if "sync_runs" in repr(d)]
    assert differences + [d for d in await schema_differences(db) if "tokens" in repr(d)] == []
