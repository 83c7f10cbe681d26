"""Migration 0007: tokens are indexed by stored state and name on both backends, as the tables
say, and the alert banner's read uses that index; downgrade removes it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from adesync.store.database import Database
from adesync.web.health_view import _alert_query
from tests.migrations import run_alembic, schema_differences


def _token_indexes(connection: Connection) -> dict[str, tuple[str, ...]]:
    return {
        str(i["name"]): tuple(str(c) for c in i["column_names"])
        for i in inspect(connection).get_indexes("tokens")
    }


async def test_tokens_are_indexed_by_state_and_name(db: Database) -> None:
    assert [d for d in await schema_differences(db) if "ix_tokens_state" in repr(d)] == []
    async with db.engine.connect() as conn:
        assert (await conn.run_sync(_token_indexes))["ix_tokens_state"] == ("state", "name")


async def test_the_alert_read_uses_the_index_and_downgrade_removes_it(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await run_alembic(db, command.upgrade, "0007")
        query = _alert_query().compile(
            db.engine.sync_engine, compile_kwargs={"literal_binds": True}
        )
        async with db.engine.connect() as conn:
            plan = (await conn.execute(text(f"EXPLAIN QUERY PLAN {query}"))).all()
        details = " | ".join(str(row[-1]) for row in plan)
        assert "USING INDEX ix_tokens_state" in details
        assert "SCAN tokens" not in details and "TEMP B-TREE" not in details
        await run_alembic(db, command.downgrade, "0006")
        async with db.engine.connect() as conn:
            assert "ix_tokens_state" not in await conn.run_sync(_token_indexes)
    finally:
        await db.dispose()
