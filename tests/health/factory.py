"""Rows for health tests, inserted directly (the rules only read the database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_sync import assignments, devices, profiles, sync_runs, worker_heartbeats

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
SEALED = b"sealed-credentials"  # the rules never open it; only its presence matters


def healthy_token(name: str = "school", **overrides: Any) -> dict[str, Any]:
    """A token with nothing wrong at NOW: valid a long time, synced a minute ago, a default
    profile, an organisational Apple Account."""
    values: dict[str, Any] = {
        "name": name,
        "token_type": "asm",
        "dep_url": "https://mdmenrollment.apple.com",
        "oauth_credentials": SEALED,
        "access_token_expiry": NOW + timedelta(days=200),
        "token_added_at": NOW - timedelta(days=100),
        "server_uuid": f"uuid-{name}",
        "server_name": f"MDM {name}",
        "org_name": f"Org of {name}",
        "admin_id": f"admin@{name}.example.org",
        "last_sync_at": NOW - timedelta(minutes=1),
        "last_successful_sync_at": NOW - timedelta(minutes=1),
        "default_profile_uuid": "PROFILE1",
        "created_at": NOW - timedelta(days=100),
        "updated_at": NOW - timedelta(minutes=1),
    }
    values.update(overrides)
    return values


async def add_token(db: Database, name: str = "school", **overrides: Any) -> int:
    async with db.write() as session:
        result = await session.execute(
            insert(tokens).values(healthy_token(name, **overrides)).returning(tokens.c.id)
        )
        return int(result.scalar_one())


async def beat(db: Database, at: datetime = NOW, worker: str = "w1") -> None:
    """A scheduler heartbeat at ``at``."""
    async with db.write() as session:
        await session.execute(
            insert(worker_heartbeats).values(
                worker_id=worker,
                kind="worker",
                hostname="localhost",
                pid=1,
                concurrency=1,
                started_at=at,
                last_seen_at=at,
            )
        )


async def add_devices(
    db: Database, token_id: int, count: int, *, prefix: str = "SN", **fields: Any
) -> list[str]:
    serials = [f"{prefix}{i:06d}" for i in range(count)]
    values = {"profile_status": "assigned", "deleted": False, **fields}
    async with db.write() as session:
        await session.execute(
            insert(devices),
            [
                {
                    "token_id": token_id,
                    "serial_number": serial,
                    "first_seen_at": NOW,
                    "updated_at": NOW,
                    **values,
                }
                for serial in serials
            ],
        )
    return serials


async def add_assignments(
    db: Database, token_id: int, serials: list[str], status: str, **fields: Any
) -> None:
    async with db.write() as session:
        await session.execute(
            insert(assignments),
            [
                {
                    "token_id": token_id,
                    "serial_number": serial,
                    "profile_uuid": "PROFILE1",
                    "status": status,
                    "attempts": 1,
                    "last_attempt_at": NOW,
                    **fields,
                }
                for serial in serials
            ],
        )


async def add_run(db: Database, token_id: int, **fields: Any) -> None:
    values = {
        "token_id": token_id,
        "kind": "sync",
        "trigger": "schedule",
        "started_at": NOW - timedelta(minutes=2),
        "finished_at": NOW - timedelta(minutes=1),
        "outcome": "ok",
        **fields,
    }
    async with db.write() as session:
        await session.execute(insert(sync_runs).values(values))


async def add_profile(db: Database, token_id: int, definition: str, **fields: Any) -> None:
    values = {
        "token_id": token_id,
        "profile_uuid": "PROFILE1",
        "profile_name": "Staff",
        "url": "https://mdm.example.org/enroll",
        "definition": definition,
        "defined_at": NOW - timedelta(days=1),
        **fields,
    }
    async with db.write() as session:
        await session.execute(insert(profiles).values(values))
