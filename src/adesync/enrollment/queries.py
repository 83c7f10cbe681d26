"""Reading enrollment for the console and the API: a device's events and a token's funnel."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select

from adesync.enrollment.model import EnrollmentState
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_enrollment import enrollment_events
from adesync.store.tables_sync import devices

__all__ = ["Funnel", "enrollment_funnel", "enrollment_timeline"]

_DOWNLOADED = frozenset(
    {
        EnrollmentState.PUSHED,
        EnrollmentState.ENROLLED,
        EnrollmentState.FAILED,
        EnrollmentState.CHECKED_OUT,
    }
)


async def enrollment_timeline(db: Database, serial: str) -> list[dict[str, Any]]:
    """The MDM events of one serial number, oldest first, shaped like sync's timeline rows
    (``kind`` is ``enrollment``, ``detail`` the event) plus their ``source``."""
    query = (
        select(
            enrollment_events.c.at,
            enrollment_events.c.event,
            enrollment_events.c.source,
        )
        .where(enrollment_events.c.serial_number == serial)
        .order_by(enrollment_events.c.at, enrollment_events.c.id)
    )
    async with db.read() as session:
        rows = await session.execute(query)
        return [
            {
                "at": row.at,
                "kind": "enrollment",
                "detail": row.event,
                "profile_uuid": None,
                "source": row.source,
            }
            for row in rows
        ]


@dataclass(frozen=True)
class Funnel:
    """A token's live devices on their way into MDM: ``assigned`` have an ADE profile,
    ``pushed`` downloaded it, ``enrolled`` completed MDM enrollment; ``by_state`` counts every
    enrollment state; ``has_events`` tells whether any MDM event reached this token's devices
    (without them, nothing can be said past ``pushed``)."""

    devices: int
    assigned: int
    pushed: int
    enrolled: int
    by_state: dict[str, int]
    has_events: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def enrollment_funnel(db: Database, token_name: str) -> Funnel:
    query = (
        select(
            devices.c.profile_status,
            devices.c.enrollment_state,
            func.count(),
            func.count(devices.c.mdm_authenticated_at)
            + func.count(devices.c.mdm_enrolled_at)
            + func.count(devices.c.mdm_checked_out_at),
        )
        .join(tokens, tokens.c.id == devices.c.token_id)
        .where(tokens.c.name == token_name, devices.c.deleted.is_(False))
        .group_by(devices.c.profile_status, devices.c.enrollment_state)
    )
    total = assigned = pushed = enrolled = with_steps = 0
    by_state = {state.value: 0 for state in EnrollmentState}
    async with db.read() as session:
        rows = (await session.execute(query)).all()
    for profile_status, state, count, steps in rows:
        total += count
        with_steps += steps
        if state in by_state:
            by_state[state] += count
        downloaded = state in _DOWNLOADED or profile_status == "pushed"
        if downloaded or profile_status == "assigned":
            assigned += count
        if downloaded:
            pushed += count
        if state == EnrollmentState.ENROLLED:
            enrolled += count
    return Funnel(
        devices=total,
        assigned=assigned,
        pushed=pushed,
        enrolled=enrolled,
        by_state=by_state,
        has_events=with_steps > 0,
    )
