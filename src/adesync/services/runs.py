"""Sync history: the runs of every token or of one, newest first (``adesync runs list``,
``GET /api/v1/sync-runs``, ``GET /api/v1/tokens/{name}/runs`` and the console's token page).

A run counts its devices as ``added`` (new to the store, or back after being deleted),
``modified`` (a stored Apple field changed), ``deleted`` and ``unchanged``; skipped syncs are
not runs and are not recorded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from adesync.services.token_errors import TokenNotFound
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_sync import sync_runs

DEFAULT_LIMIT = 50

# A run as every door shows it, in this order.
RUN_COLUMNS = (
    sync_runs.c.id,
    tokens.c.name.label("token"),
    sync_runs.c.kind,
    sync_runs.c.trigger,
    sync_runs.c.started_at,
    sync_runs.c.finished_at,
    sync_runs.c.duration_ms,
    sync_runs.c.pages,
    sync_runs.c.added,
    sync_runs.c.modified,
    sync_runs.c.deleted,
    sync_runs.c.unchanged,
    sync_runs.c.assigned,
    sync_runs.c.outcome,
    sync_runs.c.error_code,
    sync_runs.c.error_detail,
    sync_runs.c.error_reference,
    sync_runs.c.cursor_recovered,
)

RunDocument = dict[str, Any]


async def list_runs(
    db: Database, token: str | None = None, limit: int = DEFAULT_LIMIT
) -> list[RunDocument]:
    """The latest ``limit`` runs (of ``token`` only, when given), newest first; raises
    :class:`TokenNotFound` for a token name that is not stored (its history would be empty
    either way, and an empty list would hide a typo)."""
    query = (
        select(*RUN_COLUMNS)
        .join(tokens, tokens.c.id == sync_runs.c.token_id)
        .order_by(sync_runs.c.started_at.desc(), sync_runs.c.id.desc())
        .limit(limit)
    )
    async with db.read() as session:
        if token is not None:
            found = await session.execute(select(tokens.c.id).where(tokens.c.name == token))
            if found.first() is None:
                raise TokenNotFound(token)
            query = query.where(tokens.c.name == token)
        return [dict(row._mapping) for row in await session.execute(query)]


__all__ = ["DEFAULT_LIMIT", "RunDocument", "TokenNotFound", "list_runs"]
