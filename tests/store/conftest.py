"""Fixtures of the storage tests."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
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


@pytest.fixture
def sqlite_trips(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Trips to aiosqlite's thread from here on, by the name of the function each ran."""
    trips: Counter[str] = Counter()
    execute = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips[getattr(fn, "__name__", "?")] += 1
        return await execute(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return trips
