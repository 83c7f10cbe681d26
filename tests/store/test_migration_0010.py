"""Migration 0010 on both backends: ``sync_runs.unchanged`` comes and goes, and runs recorded
before it keep their counts and read 0 unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from adesync.store.database import Database
from adesync.store.tables_sync import sync_runs
from tests.migrations import run_alembic, schema_differences


def _run_columns(connection: Connection) -> set[str]:
    return {str(column["name"]) for column in inspect(connection).get_columns("sync_runs")}


async def test_upgrade_gives_earlier_runs_0_unchanged_and_downgrade_removes_the_column(
    db: Database,
) -> None:
    when = datetime(2026, 11, 1, 12, 0)
    try:
        await run_alembic(db, command.downgrade, "0009")
        async with db.engine.connect() as conn:
            assert "unchanged" not in await conn.run_sync(_run_columns)
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO tokens (name, token_type, dep_url, created_at, updated_at) "
                    "VALUES ('north', 'abm', 'http://127.0.0.1:9', :at, :at)"
                ),
                {"at": when},
            )
            await conn.execute(
                text(
                    "INSERT INTO sync_runs (token_id, kind, trigger, started_at, outcome, pages, "
                    "added, modified, deleted, assigned) SELECT id, 'fetch', 'manual', :at, "
                    "'ok', 3, 2500, 0, 1, 4 FROM tokens WHERE name = 'north'"
                ),
                {"at": when},
            )
        await run_alembic(db, command.upgrade, "0010")
        async with db.read() as session:
            row = (
                await session.execute(
                    select(
                        sync_runs.c.started_at,
                        sync_runs.c.added,
                        sync_runs.c.deleted,
                        sync_runs.c.unchanged,
                        sync_runs.c.assigned,
                    )
                )
            ).one()
        assert tuple(row) == (when.replace(tzinfo=UTC), 2500, 1, 0, 4)
        await run_alembic(db, command.downgrade, "0009")
        async with db.engine.connect() as conn:
            assert "unchanged" not in await conn.run_sync(_run_columns)
    finally:
        await run_alembic(db, command.upgrade, "head")
    assert [d for d in await schema_differences(db) if "sync_runs" in repr(d)] == []
