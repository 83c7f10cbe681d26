"""Check-in payloads and webhook bodies for the enrollment tests, from NanoMDM's recordings."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from adesync.store.database import Database
from adesync.store.tables_enrollment import enrollment_events

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mdm-checkin"

# Authenticate.1 / TokenUpdate.1: an iPad; Authenticate.2 / TokenUpdate.2: an iMac.
IPAD_SERIAL = "F5JM992LF193"
IPAD_UDID = "663b07bb783e9ade1dae4fbb92ea12afc0ce5b69"
IMAC_SERIAL = "C02MT66KFLHH"
IMAC_UDID = "66ADE930-5FDF-5EC4-8429-15640684C489"

TOPICS = {"Authenticate": "mdm.Authenticate", "TokenUpdate": "mdm.TokenUpdate"}


def plist(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def webhook_body(
    raw: bytes,
    topic: str,
    *,
    udid: str | None = None,
    created_at: str = "2026-11-20T10:00:00Z",
    tally: int | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A webhook event as NanoMDM and MicroMDM send it (JSON with the plist in base64)."""
    checkin: dict[str, Any] = {"raw_payload": base64.b64encode(raw).decode()}
    if udid is not None:
        checkin["udid"] = udid
    if tally is not None:
        checkin["token_update_tally"] = tally
    body: dict[str, Any] = {"topic": topic, "created_at": created_at, "checkin_event": checkin}
    if event_id is not None:
        body["event_id"] = event_id
    return body


def fixture_event(name: str, **kwargs: Any) -> bytes:
    """The webhook body of the fixture plist ``name`` (``Authenticate.2.plist``)."""
    topic = TOPICS[name.split(".")[0]]
    return json.dumps(webhook_body(plist(name), topic, **kwargs)).encode()


def checkout_plist(udid: str) -> bytes:
    """A CheckOut message as devices send it (no fixture exists for it; the keys are Apple's)."""
    import plistlib

    return plistlib.dumps(
        {"MessageType": "CheckOut", "Topic": "com.apple.mgmt.External.test", "UDID": udid}
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


async def event_count(db: Database) -> int:
    async with db.read() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(enrollment_events))
            ).scalar_one()
        )


async def stored_events(db: Database) -> list[dict[str, Any]]:
    async with db.read() as session:
        rows = await session.execute(
            select(enrollment_events).order_by(enrollment_events.c.at, enrollment_events.c.id)
        )
        return [dict(row._mapping) for row in rows]
