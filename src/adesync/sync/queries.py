"""Reading what sync stored: devices (filtered, keyset-paged), a device's timeline (runs:
:mod:`adesync.services.runs`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.engine import Row

from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_sync import assignments, device_history, devices, sync_runs
from adesync.sync.model import APPLE_DEVICE_FIELDS

# Apple's fields, as listings show them.
DEVICE_FIELDS = ("serial_number", *APPLE_DEVICE_FIELDS)
# The values of Apple's profile_status a listing can filter by.
PROFILE_STATUSES = ("empty", "assigned", "pushed", "removed")


@dataclass
class DeviceFilter:
    """What ``devices list`` may narrow by; None means any."""

    token: str | None = None
    profile_status: str | None = None
    deleted: bool | None = None
    serial_contains: str | None = None
    enrollment_state: str | None = None


def device_columns() -> list[Any]:
    columns: list[Any] = [devices.c[name] for name in DEVICE_FIELDS]
    columns += [
        devices.c.id,
        tokens.c.name.label("token"),
        devices.c.deleted,
        devices.c.last_op_type,
        devices.c.last_op_date,
    ]
    if "enrollment_state" in devices.c:
        columns.append(devices.c.enrollment_state)
    return columns


def device_document(row: Row[Any]) -> dict[str, Any]:
    """A device as listings print it: Apple's fields plus token, deleted, last op, enrollment."""
    mapping = row._mapping
    document = {name: mapping[name] for name in DEVICE_FIELDS}
    document.update(
        token=mapping["token"],
        deleted=bool(mapping["deleted"]),
        last_op_type=mapping["last_op_type"],
        last_op_date=mapping["last_op_date"],
        enrollment_state=mapping.get("enrollment_state"),
    )
    return document


def device_query(filters: DeviceFilter) -> Select[Any]:
    query = select(*device_columns()).join(tokens, tokens.c.id == devices.c.token_id)
    if filters.token is not None:
        query = query.where(tokens.c.name == filters.token)
    if filters.profile_status is not None:
        query = query.where(devices.c.profile_status == filters.profile_status)
    if filters.deleted is not None:
        query = query.where(devices.c.deleted.is_(filters.deleted))
    if filters.serial_contains:
        query = query.where(devices.c.serial_number.contains(filters.serial_contains.upper()))
    if filters.enrollment_state is not None and "enrollment_state" in devices.c:
        query = query.where(devices.c.enrollment_state == filters.enrollment_state)
    return query


async def list_devices(
    db: Database,
    filters: DeviceFilter,
    *,
    limit: int | None = None,
    after_id: int | None = None,
) -> list[dict[str, Any]]:
    """Devices ordered by id; ``after_id`` continues a previous page (keyset pagination)."""
    query = device_query(filters).order_by(devices.c.id)
    if after_id is not None:
        query = query.where(devices.c.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    async with db.read() as session:
        result = await session.execute(query)
        return [device_document(row) | {"id": row.id} for row in result]


async def device_timeline(db: Database, token: str, serial: str) -> list[dict[str, Any]]:
    """What happened to one device of one token, oldest first."""
    query = (
        select(
            device_history.c.at,
            device_history.c.kind,
            device_history.c.detail,
            device_history.c.profile_uuid,
        )
        .join(tokens, tokens.c.id == device_history.c.token_id)
        .where(tokens.c.name == token, device_history.c.serial_number == serial)
        .order_by(device_history.c.at, device_history.c.id)
    )
    async with db.read() as session:
        return [dict(row._mapping) for row in await session.execute(query)]


async def device_assignment(db: Database, token: str, serial: str) -> dict[str, Any] | None:
    query = (
        select(
            assignments.c.profile_uuid,
            assignments.c.status,
            assignments.c.attempts,
            assignments.c.last_attempt_at,
            assignments.c.next_attempt_at,
        )
        .join(tokens, tokens.c.id == assignments.c.token_id)
        .where(and_(tokens.c.name == token, assignments.c.serial_number == serial))
    )
    async with db.read() as session:
        row = (await session.execute(query)).first()
    return dict(row._mapping) if row else None


async def running_run(db: Database, token_id: int, now: datetime) -> int | None:
    """The id of the token's run under way (the newest ``running`` one while a lease on the
    token is live), if any."""
    async with db.read() as session:
        found = await session.execute(
            select(sync_runs.c.id)
            .join(tokens, tokens.c.id == sync_runs.c.token_id)
            .where(
                sync_runs.c.token_id == token_id,
                sync_runs.c.outcome == "running",
                tokens.c.lease_expires_at > now,
            )
            .order_by(sync_runs.c.id.desc())
            .limit(1)
        )
        run_id = found.scalar()
    return None if run_id is None else int(run_id)
