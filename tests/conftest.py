"""Shared fixtures: a clean, migrated database per test on SQLite and on PostgreSQL.

The schema is migrated once per backend per session: SQLite into a template file that each test
copies, PostgreSQL into a database made for this run (so concurrent runs never collide) whose
tables are truncated between tests. With CI=true an unreachable PostgreSQL fails the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from adesync.store.database import Database
from adesync.store.keycheck import adopt_key
from adesync.store.migrate import upgrade
from adesync.store.schema import metadata
from adesync.store.secrets import SecretBox, write_key_file

PG_URL = os.environ.get(
    "ADESYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]
# A fixed test key, so tests need not generate one each time.
TEST_KEY = "dGVzdC1rZXktZm9yLWFkZXN5bmMtdGVzdHMtb25seSE="


def _migrate(url: str) -> None:
    async def go() -> None:
        db = Database(url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(go())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "adesync.db"
    _migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this test run, migrated once, dropped at the end."""
    admin_url = make_url(PG_URL).set(drivername="postgresql+psycopg")
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable in CI: {exc}")
        pytest.skip(f"PostgreSQL at {PG_URL} is unreachable: {exc}")
    name = f"adesync_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    _migrate(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_postgres(url: str) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a migrated, empty database on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "adesync.db"
        shutil.copyfile(template, target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.from_text(TEST_KEY, source="tests")


@dataclass
class Home:
    """An initialised installation: ADESYNC_* point at it, its key file and key check exist."""

    path: Path
    db_url: str
    box: SecretBox


@pytest.fixture
async def home(
    db_url: str, tmp_path: Path, box: SecretBox, monkeypatch: pytest.MonkeyPatch
) -> Home:
    path = tmp_path / "home"
    path.mkdir()
    write_key_file(path / "secret.key", box)
    monkeypatch.setenv("ADESYNC_HOME", str(path))
    monkeypatch.setenv("ADESYNC_DATABASE_URL", db_url)
    monkeypatch.delenv("ADESYNC_SECRET_KEY", raising=False)
    database = Database(db_url)
    try:
        await adopt_key(database, box)
    finally:
        await database.dispose()
    return Home(path=path, db_url=db_url, box=box)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own ADESYNC_* settings or home."""
    for name in list(os.environ):
        if name.startswith("ADESYNC_") and name != "ADESYNC_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("ADESYNC_HOME", str(tmp_path / "default-home"))
