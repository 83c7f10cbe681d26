"""Alembic migrations, run by ``adesync init`` and ``adesync db upgrade``, never at import."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from adesync.errors import AdesyncError
from adesync.store.database import Database

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = "adesync.store:migrations"


class SchemaOutOfDate(AdesyncError):
    code = "schema_out_of_date"
    exit_code = 4
    http_status = 503


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


VERSIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)


@cache
def head_revision() -> str:
    """The newest migration, read from the version files (without importing Alembic, which
    every command would otherwise pay for at start-up)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        if found := _REVISION.search(source):
            revisions.add(found.group(1))
        if down := _DOWN.search(source):
            parents.add(down.group(1))
    heads = revisions - parents
    assert len(heads) == 1, f"migrations must form one line, found heads {sorted(heads)}"
    return heads.pop()


def _upgrade(connection: Connection) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current(connection: Connection) -> str | None:
    """The revision in Alembic's version table (None on a database without it)."""
    if not connection.dialect.has_table(connection, "alembic_version"):
        return None
    try:
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:
        return None
    return str(rows[0][0]) if rows else None


async def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the schema to the latest revision; returns (revision before, revision after)."""
    async with db.engine.connect() as conn:
        before = await conn.run_sync(_current)
    if before != head_revision():
        async with db.engine.begin() as conn:
            await conn.run_sync(_upgrade)
    return before, head_revision()


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)


async def require_current(db: Database) -> None:
    """Raise SchemaOutOfDate unless the schema is at the latest revision."""
    await db.ping()
    current = await current_revision(db)
    if current is None:
        raise SchemaOutOfDate("The database has no adesync schema yet; run `adesync init`.")
    if current != head_revision():
        raise SchemaOutOfDate(
            f"The database schema is at revision {current}, not the latest "
            f"({head_revision()}); run `adesync db upgrade`."
        )
