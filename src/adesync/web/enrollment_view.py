"""What the console shows about enrollment: a device's steps and merged timeline, a token's
funnel (assigned → pushed → enrolled)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from adesync.enrollment.queries import Funnel, enrollment_funnel, enrollment_timeline
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_sync import devices

__all__ = ["EnrollmentStep", "device_enrollment", "merged_timeline", "token_funnel"]


@dataclass(frozen=True)
class EnrollmentStep:
    """One step on a device's way into MDM and when it last happened (``None``: not yet)."""

    name: str  # assigned | pushed | authenticated | enrolled | checked_out
    at: datetime | None


async def device_enrollment(db: Database, token: str, serial: str) -> list[EnrollmentStep]:
    """The steps of one device: Apple's (profile assigned, pushed) then the MDM's."""
    query = (
        select(
            devices.c.profile_assign_time,
            devices.c.profile_push_time,
            devices.c.mdm_authenticated_at,
            devices.c.mdm_enrolled_at,
            devices.c.mdm_checked_out_at,
        )
        .join(tokens, tokens.c.id == devices.c.token_id)
        .where(tokens.c.name == token, devices.c.serial_number == serial)
    )
    async with db.read() as session:
        row = (await session.execute(query)).first()
    if row is None:
        return []
    steps = [
        EnrollmentStep("assigned", row.profile_assign_time),
        EnrollmentStep("pushed", row.profile_push_time),
        EnrollmentStep("authenticated", row.mdm_authenticated_at),
        EnrollmentStep("enrolled", row.mdm_enrolled_at),
    ]
    if row.mdm_checked_out_at is not None:
        steps.append(EnrollmentStep("checked_out", row.mdm_checked_out_at))
    return steps


async def merged_timeline(
    db: Database, serial: str, sync_rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Sync's timeline rows and the MDM events of the serial, oldest first."""
    rows = [*sync_rows, *await enrollment_timeline(db, serial)]
    return sorted(rows, key=lambda row: row["at"])


async def token_funnel(db: Database, token: str) -> Funnel:
    return await enrollment_funnel(db, token)
