"""Token leases and named leases: which worker may sync a token (or run a periodic job) now.

PostgreSQL claims due tokens with ``SELECT ... FOR UPDATE SKIP LOCKED`` so workers on many
machines never wait on each other; SQLite runs the same statements inside ``BEGIN IMMEDIATE``
transactions, which serialise the claim across processes.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from adesync.store.database import Database, rowcount
from adesync.store.sync_repo import close_runs_of_ended_leases, due_filter
from adesync.store.tables import tokens
from adesync.store.tables_sync import leases, worker_heartbeats


def new_worker_id(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def claim_due_tokens(
    db: Database, worker: str, limit: int, now: datetime, lease_seconds: float
) -> list[int]:
    """Lease up to ``limit`` due tokens for ``worker``; returns their ids, most overdue first.
    Runs of those tokens left ``running`` by a worker that died are closed as ``interrupted``."""
    if limit <= 0:
        return []
    query = (
        select(tokens.c.id)
        .where(due_filter(now))
        .order_by(tokens.c.next_sync_at.asc().nulls_first(), tokens.c.id)
        .limit(limit)
    )
    if db.is_postgresql:
        query = query.with_for_update(skip_locked=True)
    async with db.write() as session:
        ids = [int(i) for i in (await session.execute(query)).scalars()]
        if ids:
            await session.execute(
                update(tokens)
                .where(tokens.c.id.in_(ids))
                .values(lease_owner=worker, lease_expires_at=now + timedelta(seconds=lease_seconds))
            )
            await close_runs_of_ended_leases(session, ids, worker, now)
    return ids


async def claim_token(
    db: Database, token_id: int, worker: str, now: datetime, lease_seconds: float
) -> bool:
    """Lease one token now (a manual sync) for ``worker`` (one run's own owner id), unless any
    lease on it is live, this process's own included. Its runs left ``running`` by a worker
    that died are closed as ``interrupted``."""
    async with db.write() as session:
        result = await session.execute(
            update(tokens)
            .where(
                tokens.c.id == token_id,
                or_(tokens.c.lease_expires_at.is_(None), tokens.c.lease_expires_at < now),
            )
            .values(lease_owner=worker, lease_expires_at=now + timedelta(seconds=lease_seconds))
        )
        claimed = rowcount(result) == 1
        if claimed:
            await close_runs_of_ended_leases(session, [token_id], worker, now)
    return claimed


async def renew_token_lease(
    db: Database, token_id: int, worker: str, now: datetime, lease_seconds: float
) -> bool:
    """Extend the lease; False when it was lost (expired and taken by another worker)."""
    async with db.write() as session:
        result = await session.execute(
            update(tokens)
            .where(tokens.c.id == token_id, tokens.c.lease_owner == worker)
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        )
    return rowcount(result) == 1


async def release_token(
    db: Database, token_id: int, worker: str, next_sync_at: datetime | None
) -> None:
    async with db.write() as session:
        await session.execute(
            update(tokens)
            .where(tokens.c.id == token_id, tokens.c.lease_owner == worker)
            .values(lease_owner=None, lease_expires_at=None, next_sync_at=next_sync_at)
        )


async def release_all(db: Database, worker: str) -> None:
    """Give back every lease ``worker`` holds (a scheduler stopping: tokens it claimed but had
    not started stay due for the others)."""
    async with db.write() as session:
        await session.execute(
            update(tokens)
            .where(tokens.c.lease_owner == worker)
            .values(lease_owner=None, lease_expires_at=None)
        )
        await session.execute(
            update(leases).where(leases.c.owner == worker).values(owner=None, expires_at=None)
        )


async def claim_named_lease(
    db: Database, name: str, worker: str, now: datetime, seconds: float
) -> bool:
    """Hold the lease ``name`` (for a periodic job) until ``now + seconds``, if it is free."""
    until = now + timedelta(seconds=seconds)
    dialect_insert = postgresql.insert if db.is_postgresql else sqlite.insert
    async with db.write() as session:
        await session.execute(
            dialect_insert(leases)
            .values(name=name, owner=None, expires_at=None)
            .on_conflict_do_nothing(index_elements=[leases.c.name])
        )
        result = await session.execute(
            update(leases)
            .where(
                leases.c.name == name,
                or_(
                    leases.c.expires_at.is_(None),
                    leases.c.expires_at < now,
                    leases.c.owner == worker,
                ),
            )
            .values(owner=worker, expires_at=until)
        )
    return rowcount(result) == 1


async def beat(
    db: Database, worker: str, kind: str, concurrency: int, started_at: datetime, now: datetime
) -> None:
    """Write this scheduler's heartbeat (health tells from these whether any is running)."""
    dialect_insert = postgresql.insert if db.is_postgresql else sqlite.insert
    stmt = dialect_insert(worker_heartbeats).values(
        worker_id=worker,
        kind=kind,
        hostname=socket.gethostname(),
        pid=os.getpid(),
        concurrency=concurrency,
        started_at=started_at,
        last_seen_at=now,
    )
    async with db.write() as session:
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[worker_heartbeats.c.worker_id],
                set_={"last_seen_at": now, "concurrency": concurrency},
            )
        )


async def forget_worker(db: Database, worker: str) -> None:
    async with db.write() as session:
        await session.execute(
            worker_heartbeats.delete().where(worker_heartbeats.c.worker_id == worker)
        )
