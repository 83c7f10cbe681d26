"""Deriving each device's ``enrollment_state`` and step times from its events, in SQL.

The columns on ``devices`` are a cache of what the events and Apple's profile status say.
They are refreshed when events are recorded (for those serials), when a sync page is committed
(for its serials: a device that arrives after its events takes them over) and periodically
(states that change with time alone: ``pushed`` becomes ``failed`` an hour after an
Authenticate with no TokenUpdate).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.enrollment.model import EnrollmentState, EventKind
from adesync.store.bulk import device_ids, values_present
from adesync.store.database import rowcount
from adesync.store.tables_enrollment import enrollment_events
from adesync.store.tables_sync import devices
from adesync.sync.model import DerivedDeviceColumn, DeviceRecord

__all__ = [
    "ENROLLMENT_STATE_COLUMN",
    "ENROLL_WITHIN",
    "RECENT_EVENTS",
    "refresh_due",
    "refresh_serials",
    "refresh_where",
    "serials_with_events",
    "state_expression",
    "state_without_steps",
]

# An Authenticate not followed by a TokenUpdate within this time is a failed enrollment.
ENROLL_WITHIN = timedelta(hours=1)
# The periodic refresh re-derives devices with events received this recently, which covers a
# sync page and an event committed at the same moment on PostgreSQL.
RECENT_EVENTS = timedelta(minutes=10)
_CHUNK = 500

_STEP_COLUMNS = {
    EventKind.AUTHENTICATED: "mdm_authenticated_at",
    EventKind.ENROLLED: "mdm_enrolled_at",
    EventKind.CHECKED_OUT: "mdm_checked_out_at",
}


# The stored values, looked up once: the state column is derived for every device synced.
_PUSHED = EnrollmentState.PUSHED.value
_NOT_CONTACTED = EnrollmentState.NOT_CONTACTED.value


def state_without_steps(profile_status: str | None) -> str:
    """The state of a device no MDM step has been seen for: Apple's profile status alone (the
    last two branches of :func:`state_expression`)."""
    return _PUSHED if profile_status == "pushed" else _NOT_CONTACTED


def _state_for_record(record: DeviceRecord) -> str:
    return state_without_steps(record.profile_status)


_NO_STEPS = " AND ".join(f"devices.{column} IS NULL" for column in _STEP_COLUMNS.values())

# Written by sync with each page: a device without steps takes the state its profile status
# gives; one with steps keeps its state (its serial has events, so the page hook re-derives it).
ENROLLMENT_STATE_COLUMN = DerivedDeviceColumn(
    name="enrollment_state",
    for_record=_state_for_record,
    on_update=f"CASE WHEN {_NO_STEPS} THEN excluded.enrollment_state "
    "ELSE devices.enrollment_state END",
)


def _latest(kind: EventKind) -> Any:
    return (
        select(func.max(enrollment_events.c.at))
        .where(
            enrollment_events.c.serial_number == devices.c.serial_number,
            enrollment_events.c.event == kind.value,
        )
        .scalar_subquery()
    )


def _not_before(later: Any, earlier: Any) -> ColumnElement[bool]:
    return or_(earlier.is_(None), later >= earlier)


def state_expression(now: datetime) -> Any:
    """The state from the step columns and ``profile_status``: the latest step wins (a
    CheckOut over a TokenUpdate over an Authenticate at the same instant)."""
    authenticated = devices.c.mdm_authenticated_at
    enrolled = devices.c.mdm_enrolled_at
    checked_out = devices.c.mdm_checked_out_at
    return case(
        (
            and_(
                checked_out.is_not(None),
                _not_before(checked_out, enrolled),
                _not_before(checked_out, authenticated),
            ),
            literal(EnrollmentState.CHECKED_OUT.value),
        ),
        (
            and_(enrolled.is_not(None), _not_before(enrolled, authenticated)),
            literal(EnrollmentState.ENROLLED.value),
        ),
        (
            and_(authenticated.is_not(None), authenticated < now - ENROLL_WITHIN),
            literal(EnrollmentState.FAILED.value),
        ),
        (
            or_(authenticated.is_not(None), devices.c.profile_status == "pushed"),
            literal(EnrollmentState.PUSHED.value),
        ),
        else_=literal(EnrollmentState.NOT_CONTACTED.value),
    )


async def refresh_where(
    session: AsyncSession, condition: ColumnElement[bool], now: datetime
) -> int:
    """Re-derive the step times and state of the devices matching ``condition``."""
    await session.execute(
        update(devices)
        .where(condition)
        .values({column: _latest(kind) for kind, column in _STEP_COLUMNS.items()})
    )
    result = await session.execute(
        update(devices).where(condition).values(enrollment_state=state_expression(now))
    )
    return rowcount(result)


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


async def refresh_serials(
    session: AsyncSession,
    serials: Iterable[str],
    now: datetime,
    *,
    token_id: int | None = None,
) -> int:
    """Re-derive the devices with these serial numbers (on every token, or on ``token_id``)."""
    unique = sorted(set(serials))
    touched = 0
    for chunk in _chunks(unique):
        condition: ColumnElement[bool] = devices.c.serial_number.in_(chunk)
        if token_id is not None:
            # By row id: given token_id = ? AND serial_number IN (...), PostgreSQL, with no
            # statistics yet for a token whose first fetch is running, reads every row of the
            # token for every page (see adesync.store.bulk).
            ids = await device_ids(session, token_id, chunk)
            if not ids:
                continue
            condition = devices.c.id.in_(ids)
        touched += await refresh_where(session, condition, now)
    return touched


async def serials_with_events(session: AsyncSession, serials: Sequence[str]) -> list[str]:
    """Those of ``serials`` that have recorded events (usually none of a sync page)."""
    return await values_present(session, enrollment_events, "serial_number", sorted(set(serials)))


async def refresh_due(session: AsyncSession, now: datetime) -> int:
    """The periodic catch-up: devices never derived, ``pushed`` devices whose Authenticate is
    now over an hour old, and devices with recently received events."""
    recent = (
        select(enrollment_events.c.serial_number)
        .where(
            enrollment_events.c.received_at >= now - RECENT_EVENTS,
            enrollment_events.c.serial_number.is_not(None),
        )
        .distinct()
    )
    serials = [row[0] for row in await session.execute(recent)]
    touched = await refresh_serials(session, serials, now)
    touched += await refresh_where(
        session,
        or_(
            devices.c.enrollment_state.is_(None),
            and_(
                devices.c.enrollment_state == EnrollmentState.PUSHED.value,
                devices.c.mdm_authenticated_at < now - ENROLL_WITHIN,
            ),
        ),
        now,
    )
    return touched
