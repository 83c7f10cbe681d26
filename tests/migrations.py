"""Running Alembic steps against a test database (the migration tests share it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from adesync.store.database import Database
from adesync.store.migrate import alembic_config
from adesync.store.schema import metadata


async def run_alembic(db: Database, step: Callable[..., None], revision: str) -> None:
    """``step`` (``alembic.command.upgrade`` or ``downgrade``) to ``revision`` on ``db``."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        step(config, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def schema_differences(db: Database) -> list[Any]:
    """What Alembic finds different between ``db``'s schema and the tables in the code."""

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with db.engine.connect() as conn:
        return await conn.run_sync(compare)
