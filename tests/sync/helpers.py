"""Rows and records for sync tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.store.tables import tokens
from adesync.store.tables_sync import devices
from adesync.sync.model import DeviceRecord
from tests.sim_fixtures import RunningSimulator, SimServer

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


async def insert_token(
    db: Database,
    box: SecretBox,
    name: str = "t1",
    *,
    lease_owner: str | None = "w1",
    credentials: dict[str, str] | None = None,
    dep_url: str = "http://127.0.0.1:9",
    **values: Any,
) -> int:
    credentials = credentials or {
        "consumer_key": "CK_1",
        "consumer_secret": "CS_1",
        "access_token": "AT_1",
        "access_secret": "AS_1",
    }
    async with db.write() as session:
        result = await session.execute(
            tokens.insert()
            .values(
                name=name,
                dep_url=dep_url,
                oauth_credentials=box.seal_text(json.dumps(credentials)),
                access_token_expiry=T0 + timedelta(days=300),
                lease_owner=lease_owner,
                lease_expires_at=T0 + timedelta(hours=1) if lease_owner else None,
                created_at=T0,
                updated_at=T0,
                **values,
            )
            .returning(tokens.c.id)
        )
        return int(result.scalar_one())


async def insert_sim_token(
    db: Database, box: SecretBox, simulator: RunningSimulator, server: SimServer, name: str
) -> int:
    """A token of ``server`` in the running simulator, free for any worker to sync."""
    return await insert_token(
        db,
        box,
        name,
        lease_owner=None,
        credentials=server.credentials,
        dep_url=simulator.base_url,
    )


def record(
    serial: str,
    op_type: str | None = None,
    op_date: datetime | None = None,
    profile_status: str = "empty",
    **fields: Any,
) -> DeviceRecord:
    base: dict[str, Any] = {"model": "iPad", "profile_status": profile_status}
    base.update(fields)
    return DeviceRecord.from_fields(serial, base, op_type, op_date)


async def device_rows(db: Database, token_id: int) -> dict[str, Any]:
    async with db.read() as session:
        rows = await session.execute(
            select(devices).where(devices.c.token_id == token_id).order_by(devices.c.serial_number)
        )
        return {row.serial_number: row for row in rows}
