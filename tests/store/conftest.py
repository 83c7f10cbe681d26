"""Fixtures of the storage tests."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adesync.store.database import Database


@pytest.fixture
async def sqlite_db(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database, for the tests of SQLite's own rules (they have no
    PostgreSQL counterpart, so they are not run, nor skipped, on PostgreSQL)."""
    target = tmp_path / "adesync.db"
    shutil.copyfile(sqlite_template, target)
    database = Database(f"sqlite+aiosqlite:///{target}")
    yield database
    await database.dispose()
