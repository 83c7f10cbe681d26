"""Migration 0006: the devices key leads with the serial number, the serial index is gone and
the partial index of devices without a profile is keyed by id, on both backends; on SQLite it
rebuilds a 0005 table holding devices without losing a row or an index, and downgrades
cleanly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from adesync.store.database import Database
from tests.migrations import run_alembic, schema_differences


def _device_indexes(connection: Connection) -> dict[str, tuple[bool, tuple[str, ...]]]:
    found = inspect(connection)
    indexes = {
        i["name"]: (bool(i["unique"]), tuple(i["column_names"]))
        for i in found.get_indexes("devices")
    }
    for unique in found.get_unique_constraints("devices"):
        indexes[str(unique["name"])] = (True, tuple(unique["column_names"]))
    return indexes


async def test_the_devices_key_leads_with_the_serial_and_matches_the_tables(
    db: Database,
) -> None:
    assert [d for d in await schema_differences(db) if "devices" in repr(d)] == []
    async with db.engine.connect() as conn:
        indexes = await conn.run_sync(_device_indexes)
    assert indexes["uq_devices_serial_number"] == (True, ("serial_number", "token_id"))
    assert indexes["ix_devices_without_profile"] == (False, ("token_id", "id"))
    assert "ix_devices_serial_number" not in indexes
    assert "uq_devices_token_id" not in indexes


async def _rows(db: Database) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT id, token_id, serial_number, profile_status FROM devices ORDER BY id")
        )
        return [tuple(row) for row in result]


async def test_upgrade_from_0005_keeps_every_device_and_index_and_downgrade_restores(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await run_alembic(db, command.upgrade, "0005")
        now = datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None).isoformat(" ")
        async with db.engine.begin() as conn:
            for token in (1, 2):
                await conn.execute(
                    text(
                        "INSERT INTO tokens (id, name, token_type, dep_url, created_at, "
                        "updated_at) VALUES (:t, :n, 'abm', 'http://127.0.0.1:9', :now, :now)"
                    ),
                    {"t": token, "n": f"t{token}", "now": now},
                )
            for token, serial, status in ((1, "A1", "empty"), (1, "A2", None), (2, "A1", "pushed")):
                await conn.execute(
                    text(
                        "INSERT INTO devices (token_id, serial_number, profile_status, deleted, "
                        "first_seen_at, updated_at) VALUES (:t, :s, :p, 0, :now, :now)"
                    ),
                    {"t": token, "s": serial, "p": status, "now": now},
                )
        before = await _rows(db)
        async with db.engine.connect() as conn:
            old_indexes = await conn.run_sync(_device_indexes)

        await run_alembic(db, command.upgrade, "0006")
        assert await _rows(db) == before
        async with db.engine.connect() as conn:
            indexes = await conn.run_sync(_device_indexes)
            partial = (
                await conn.execute(
                    text("SELECT sql FROM sqlite_master WHERE name = 'ix_devices_without_profile'")
                )
            ).scalar_one()
        assert indexes == {
            name: value
            for name, value in old_indexes.items()
            if name not in ("ix_devices_serial_number", "uq_devices_token_id")
        } | {
            "uq_devices_serial_number": (True, ("serial_number", "token_id")),
            "ix_devices_without_profile": (False, ("token_id", "id")),
        }
        assert "WHERE deleted = 0 AND profile_status IN ('empty', 'removed')" in partial
        with pytest.raises(IntegrityError):
            async with db.engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO devices (token_id, serial_number, deleted, first_seen_at, "
                        "updated_at) VALUES (2, 'A1', 0, :now, :now)"
                    ),
                    {"now": now},
                )

        await run_alembic(db, command.downgrade, "0005")
        assert await _rows(db) == before
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_device_indexes) == old_indexes
    finally:
        await db.dispose()
