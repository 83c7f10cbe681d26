"""The audit log: every change, who made it, to what, and when."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.store.database import Database
from adesync.store.tables_web import audit_log
from adesync.store.types import utcnow

__all__ = ["AuditEntry", "cli_actor", "list_entries", "record", "record_in"]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any] | None
    remote_addr: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
            "remote_addr": self.remote_addr,
        }


async def record_in(
    session: AsyncSession,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    remote_addr: str | None = None,
) -> None:
    """Write one entry inside the caller's transaction (so the change and its record commit
    together). ``detail`` must hold no secret."""
    await session.execute(
        audit_log.insert().values(
            at=utcnow(),
            actor=actor[:100],
            action=action,
            target=None if target is None else target[:255],
            detail=None if detail is None else json.dumps(detail, ensure_ascii=False, default=str),
            remote_addr=remote_addr,
        )
    )


async def record(
    db: Database,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    remote_addr: str | None = None,
) -> None:
    """Write one entry in a transaction of its own (after a change another module committed)."""
    async with db.write() as session:
        await record_in(session, actor, action, target, detail, remote_addr)


async def list_entries(
    db: Database,
    *,
    limit: int = 100,
    before_id: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
) -> list[AuditEntry]:
    """Newest first; ``before_id`` continues a listing (keyset pagination)."""
    conditions = []
    if before_id is not None:
        conditions.append(audit_log.c.id < before_id)
    if actor is not None:
        conditions.append(audit_log.c.actor == actor)
    if action is not None:
        conditions.append(audit_log.c.action == action)
    if target is not None:
        conditions.append(audit_log.c.target == target)
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if conditions:
        query = query.where(and_(*conditions))
    async with db.read() as session:
        rows = (await session.execute(query)).all()
    return [
        AuditEntry(
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            target=row.target,
            detail=None if row.detail is None else json.loads(row.detail),
            remote_addr=row.remote_addr,
        )
        for row in rows
    ]


def cli_actor() -> str:
    """How the audit log names a change made from the command line: ``cli:<login>``."""
    import getpass

    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return f"cli:{login}"
