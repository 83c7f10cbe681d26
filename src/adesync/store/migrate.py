"""Alembic migrations, run by ``adesync init`` and ``adesync db upgrade``, never at import."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from adesync.errors import AdesyncError
from adesync.store.database import Database

SCRIPT_LOCATION = "adesync.store:migrations"


class SchemaOutOfDate(AdesyncError):
    code = "schema_out_of_date"
    exit_code = 4
    http_status = 503


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


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
