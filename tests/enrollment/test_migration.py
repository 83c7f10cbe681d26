"""Migration 0005: the migrated schema matches the enrollment tables and device columns on
both backends; on SQLite it upgrades a 0004 database holding devices (deriving their state)
and downgrades cleanly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import inspect, text

from adesync.store.database import Database
from tests.migrations import run_alembic, schema_differences

OURS = {"enrollment_events", "mdm_devices", "enrollment_url_probes"}
OUR_COLUMNS = {"enrollment_state", "mdm_authenticated_at", "mdm_enrolled_at", "mdm_checked_out_at"}


def _mentions_ours(diff: Any) -> bool:
    text_ = repr(diff)
    return any(name in text_ for name in (*OURS, *OUR_COLUMNS, "ix_devices_enrollment_state"))


async def test_the_migrated_schema_matches_the_tables(db: Database) -> None:
    diffs = await schema_differences(db)
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        columns = await conn.run_sync(
            lambda c: {column["name"] for column in inspect(c).get_columns("devices")}
        )
    assert [d for d in diffs if _mentions_ours(d)] == []
    assert names >= OURS
    assert columns >= OUR_COLUMNS


async def test_upgrade_from_0004_derives_states_and_downgrade_removes_everything(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await run_alembic(db, command.upgrade, "0004")
        now = datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None).isoformat(" ")
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO tokens (id, name, token_type, dep_url, created_at, updated_at) "
                    "VALUES (1, 't', 'abm', 'http://127.0.0.1:9', :now, :now)"
                ),
                {"now": now},
            )
            for serial, status in (("A1", "pushed"), ("A2", "assigned"), ("A3", None)):
                await conn.execute(
                    text(
                        "INSERT INTO devices (token_id, serial_number, profile_status, deleted, "
                        "first_seen_at, updated_at) VALUES (1, :s, :p, 0, :now, :now)"
                    ),
                    {"s": serial, "p": status, "now": now},
                )
        await run_alembic(db, command.upgrade, "0005")
        async with db.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT serial_number, enrollment_state FROM devices ORDER BY serial_number")
            )
            assert [tuple(row) for row in rows] == [
                ("A1", "pushed"),
                ("A2", "not_contacted"),
                ("A3", "not_contacted"),
            ]
        await run_alembic(db, command.downgrade, "0004")
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            columns = await conn.run_sync(
                lambda c: {column["name"] for column in inspect(c).get_columns("devices")}
            )
            count = (await conn.execute(text("SELECT count(*) FROM devices"))).scalar()
        assert not OURS & names
        assert not OUR_COLUMNS & columns
        assert count == 3
    finally:
        await db.dispose()
