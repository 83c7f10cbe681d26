"""Recording enrollment events, idempotently, and keeping the devices' state in step.

Every call is one write transaction: the events, the UDID mapping and the re-derived device
states are committed together or not at all. An event whose key is already stored changes
nothing. Events for serial numbers that no token lists yet are kept; the devices take them
over when a sync brings them (see :mod:`adesync.enrollment.state`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.enrollment.model import EnrollmentEvent, EventKind, RecordResult
from adesync.enrollment.state import refresh_serials
from adesync.enrollment.webhooks import WebhookCheckIn
from adesync.store.database import Database
from adesync.store.tables_enrollment import enrollment_events, mdm_devices
from adesync.store.tables_sync import devices

__all__ = ["CLOCK_TOLERANCE", "WebhookOutcome", "record_events", "record_webhook"]

# An MDM server's clock may run ahead of ours; times further ahead are taken as "now".
CLOCK_TOLERANCE = timedelta(minutes=5)
_CHUNK = 500


@dataclass(frozen=True)
class WebhookOutcome:
    """What a webhook event did. ``recorded`` is true when an event was stored; otherwise
    ``reason`` says why not (``duplicate``, ``follow_up_token_update``, ``user_channel``,
    ``topic_not_tracked``)."""

    recorded: bool
    event: EventKind | None
    serial_number: str | None
    udid: str | None
    reason: str | None = None
    unknown_serial: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "recorded": self.recorded,
            "event": None if self.event is None else self.event.value,
            "serial_number": self.serial_number,
            "udid": self.udid,
            "reason": self.reason,
            "unknown_serial": self.unknown_serial,
        }


def _insert(db: Database, table: Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT with the dialect's ON CONFLICT clauses."""
    return postgresql.insert(table) if db.is_postgresql else sqlite.insert(table)


def _row(event: EnrollmentEvent, now: datetime) -> dict[str, object]:
    return {
        "serial_number": event.serial_number,
        "udid": event.udid,
        "event": event.kind.value,
        "at": min(event.at, now + CLOCK_TOLERANCE),
        "source": event.source.value,
        "event_key": event.key,
        "received_at": now,
    }


async def _insert_one(
    db: Database, session: AsyncSession, event: EnrollmentEvent, now: datetime
) -> bool:
    """Store one event; False when its key is already stored."""
    statement = (
        _insert(db, enrollment_events)
        .values(_row(event, now))
        .on_conflict_do_nothing(index_elements=[enrollment_events.c.event_key])
        .returning(enrollment_events.c.id)
    )
    return (await session.execute(statement)).first() is not None


async def _known_serials(session: AsyncSession, serials: Sequence[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(serials), _CHUNK):
        chunk = serials[start : start + _CHUNK]
        rows = await session.execute(
            select(devices.c.serial_number).where(devices.c.serial_number.in_(chunk)).distinct()
        )
        known.update(row[0] for row in rows)
    return known


async def _stored_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    stored: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        rows = await session.execute(
            select(enrollment_events.c.event_key).where(enrollment_events.c.event_key.in_(chunk))
        )
        stored.update(row[0] for row in rows)
    return stored


async def record_events(
    db: Database, events: Sequence[EnrollmentEvent], now: datetime
) -> RecordResult:
    """Record events that name their serial number (the native endpoint and the import)."""
    result = RecordResult()
    unique: dict[str, EnrollmentEvent] = {}
    for event in events:
        unique.setdefault(event.key, event)
    result.duplicates = len(events) - len(unique)
    async with db.write() as session:
        stored = await _stored_keys(session, list(unique))
        fresh = [event for key, event in unique.items() if key not in stored]
        result.duplicates += len(unique) - len(fresh)
        for start in range(0, len(fresh), _CHUNK):
            chunk = fresh[start : start + _CHUNK]
            statement = (
                _insert(db, enrollment_events)
                .values([_row(event, now) for event in chunk])
                .on_conflict_do_nothing(index_elements=[enrollment_events.c.event_key])
            )
            await session.execute(statement)
        result.recorded = len(fresh)
        serials = sorted({e.serial_number for e in fresh if e.serial_number is not None})
        known = await _known_serials(session, serials)
        result.unknown_serials = len(set(serials) - known)
        await refresh_serials(session, known, now)
    return result


async def _serial_of(session: AsyncSession, udid: str | None) -> str | None:
    if udid is None:
        return None
    row = (
        await session.execute(select(mdm_devices.c.serial_number).where(mdm_devices.c.udid == udid))
    ).first()
    return None if row is None else str(row[0])


async def _map_udid(
    db: Database, session: AsyncSession, udid: str, serial: str, now: datetime
) -> None:
    """Remember the UDID's serial and give it the events that arrived with the UDID only."""
    statement = _insert(db, mdm_devices).values(
        udid=udid, serial_number=serial, first_seen_at=now, last_seen_at=now
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[mdm_devices.c.udid],
            set_={"serial_number": serial, "last_seen_at": now},
        )
    )
    await session.execute(
        update(enrollment_events)
        .where(enrollment_events.c.udid == udid, enrollment_events.c.serial_number.is_(None))
        .values(serial_number=serial)
    )


async def _latest_kind(session: AsyncSession, serial: str | None, udid: str | None) -> str | None:
    if serial is not None:
        condition = enrollment_events.c.serial_number == serial
    elif udid is not None:
        condition = and_(
            enrollment_events.c.udid == udid, enrollment_events.c.serial_number.is_(None)
        )
    else:
        return None
    row = (
        await session.execute(
            select(enrollment_events.c.event)
            .where(condition)
            .order_by(enrollment_events.c.at.desc(), enrollment_events.c.id.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else str(row[0])


async def _key_stored(session: AsyncSession, key: str) -> bool:
    row = await session.execute(
        select(enrollment_events.c.id).where(enrollment_events.c.event_key == key)
    )
    return row.first() is not None


async def record_webhook(db: Database, message: WebhookCheckIn, now: datetime) -> WebhookOutcome:
    """Record what one webhook event says about a device's enrollment.

    Authenticate maps the UDID to the serial number and records ``authenticated``. A
    TokenUpdate records ``enrolled`` when it completes an enrollment: NanoMDM's
    ``token_update_tally`` is 1, or (MicroMDM sends no tally) the device's latest event is
    not ``enrolled`` already; later TokenUpdates are routine and change nothing. CheckOut
    records ``checked_out``. A UDID never seen in an Authenticate is kept with the event and
    matched when its Authenticate arrives.
    """
    if message.kind is None or message.checkin is None:
        return WebhookOutcome(False, None, None, None, reason="topic_not_tracked")
    checkin = message.checkin
    udid = message.udid
    if checkin.user_channel:
        return WebhookOutcome(False, message.kind, None, udid, reason="user_channel")
    at = message.created_at or now
    async with db.write() as session:
        if await _key_stored(session, message.key):
            serial = checkin.serial_number or await _serial_of(session, udid)
            return WebhookOutcome(False, message.kind, serial, udid, reason="duplicate")
        if message.kind is EventKind.AUTHENTICATED:
            serial = checkin.serial_number
            if udid is not None and serial is not None:
                await _map_udid(db, session, udid, serial, now)
        else:
            serial = await _serial_of(session, udid)
        if message.kind is EventKind.ENROLLED and message.token_update_tally != 1:
            latest = await _latest_kind(session, serial, udid)
            if latest == EventKind.ENROLLED.value:
                return WebhookOutcome(
                    False, message.kind, serial, udid, reason="follow_up_token_update"
                )
        event = EnrollmentEvent(
            kind=message.kind,
            at=at,
            source=message.source,
            key=message.key,
            serial_number=serial,
            udid=udid,
        )
        if not await _insert_one(db, session, event, now):
            return WebhookOutcome(False, message.kind, serial, udid, reason="duplicate")
        unknown = False
        if serial is not None:
            unknown = not await _known_serials(session, [serial])
            await refresh_serials(session, [serial], now)
        return WebhookOutcome(True, message.kind, serial, udid, unknown_serial=unknown)
