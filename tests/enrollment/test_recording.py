"""Recording webhook and native events on both backends: UDID mapping, idempotency, the
derived enrollment state, and events that arrive before their device syncs."""

from __future__ import annotations

import json
import plistlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from adesync.enrollment import EventSource, native_event, record_events, record_webhook
from adesync.enrollment.jobs import refresh_after_page
from adesync.enrollment.state import ENROLLMENT_STATE_COLUMN, refresh_due
from adesync.enrollment.webhooks import parse_webhook
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.store.sync_repo import SyncRepo
from adesync.store.tables_enrollment import mdm_devices
from adesync.store.tables_sync import devices
from tests.enrollment.helpers import (
    IMAC_SERIAL,
    IMAC_UDID,
    IPAD_SERIAL,
    IPAD_UDID,
    at,
    checkout_plist,
    event_count,
    fixture_event,
    stored_events,
    webhook_body,
)
from tests.sync.helpers import insert_token, record

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


async def add_devices(db: Database, box: SecretBox, token_id: int, *records: Any) -> None:
    """Commit a sync page through the sync engine's store (with the enrollment state column, as
    wiring registers it), then run the page hook."""
    await SyncRepo(db, box, [ENROLLMENT_STATE_COLUMN]).commit_page(
        token_id,
        "w1",
        list(records),
        "cursor-1",
        fetch_started_at=None,
        completes_fetch=False,
        now=NOW,
    )
    await refresh_after_page(db, token_id, "sync", records)


async def device(db: Database, serial: str) -> dict[str, Any]:
    async with db.read() as session:
        row = (
            await session.execute(select(devices).where(devices.c.serial_number == serial))
        ).one()
    return dict(row._mapping)


async def webhook(
    db: Database, body: bytes, source: EventSource = EventSource.NANOMDM, now: datetime = NOW
) -> Any:
    return await record_webhook(db, parse_webhook(body, source), now)


PUSHED: dict[str, Any] = {"profile_status": "pushed", "profile_push_time": NOW - timedelta(days=1)}


async def test_authenticate_then_first_token_update_enrolls_the_device(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    await add_devices(db, box, token_id, record(IMAC_SERIAL, "added", NOW, **PUSHED))
    assert (await device(db, IMAC_SERIAL))["enrollment_state"] == "pushed"

    authenticated = "2026-11-20T11:30:00Z"  # half an hour before NOW
    first = await webhook(db, fixture_event("Authenticate.2.plist", created_at=authenticated))
    assert first.to_dict() == {
        "recorded": True,
        "event": "authenticated",
        "serial_number": IMAC_SERIAL,
        "udid": IMAC_UDID,
        "reason": None,
        "unknown_serial": False,
    }
    row = await device(db, IMAC_SERIAL)
    assert (row["enrollment_state"], row["mdm_authenticated_at"]) == ("pushed", at(authenticated))

    second = await webhook(
        db, fixture_event("TokenUpdate.2.plist", created_at="2026-11-20T11:30:30Z", tally=1)
    )
    assert (second.recorded, second.event, second.serial_number) == (True, "enrolled", IMAC_SERIAL)
    row = await device(db, IMAC_SERIAL)
    assert row["enrollment_state"] == "enrolled"
    assert row["mdm_enrolled_at"] == at("2026-11-20T11:30:30Z")
    async with db.read() as session:
        mapped = (await session.execute(select(mdm_devices.c.serial_number))).scalars().all()
    assert mapped == [IMAC_SERIAL]


async def test_the_same_event_twice_changes_nothing(db: Database, box: SecretBox) -> None:
    token_id = await insert_token(db, box)
    await add_devices(db, box, token_id, record(IPAD_SERIAL, "added", NOW, **PUSHED))
    body = fixture_event("Authenticate.1.plist")
    assert (await webhook(db, body)).recorded
    before = await device(db, IPAD_SERIAL)
    again = await webhook(db, body, now=NOW + timedelta(minutes=5))
    assert (again.recorded, again.reason, again.serial_number) == (False, "duplicate", IPAD_SERIAL)
    assert await event_count(db) == 1
    assert await device(db, IPAD_SERIAL) == before


async def test_follow_up_token_updates_are_not_enrollments(db: Database, box: SecretBox) -> None:
    token_id = await insert_token(db, box)
    await add_devices(db, box, token_id, record(IPAD_SERIAL, "added", NOW, **PUSHED))
    await webhook(db, fixture_event("Authenticate.1.plist", created_at="2026-11-20T10:00:00Z"))
    await webhook(
        db, fixture_event("TokenUpdate.1.plist", created_at="2026-11-20T10:01:00Z", tally=1)
    )
    follow_up = await webhook(
        db, fixture_event("TokenUpdate.1.plist", created_at="2026-11-20T11:00:00Z", tally=2)
    )
    assert (follow_up.recorded, follow_up.reason) == (False, "follow_up_token_update")
    # MicroMDM sends no tally: a TokenUpdate after "enrolled" is routine as well.
    micro = await webhook(
        db,
        fixture_event("TokenUpdate.1.plist", created_at="2026-11-20T11:30:00Z"),
        EventSource.MICROMDM,
    )
    assert (micro.recorded, micro.reason) == (False, "follow_up_token_update")
    assert [e["event"] for e in await stored_events(db)] == ["authenticated", "enrolled"]
    assert (await device(db, IPAD_SERIAL))["mdm_enrolled_at"] == at("2026-11-20T10:01:00Z")


async def test_micromdm_first_token_update_enrolls(db: Database, box: SecretBox) -> None:
    token_id = await insert_token(db, box)
    await add_devices(db, box, token_id, record(IMAC_SERIAL, "added", NOW, **PUSHED))
    source = EventSource.MICROMDM
    await webhook(db, fixture_event("Authenticate.2.plist", event_id="e-1"), source)
    enrolled = await webhook(
        db, fixture_event("TokenUpdate.2.plist", created_at="2026-11-20T10:02:00Z"), source
    )
    assert enrolled.recorded and (await device(db, IMAC_SERIAL))["enrollment_state"] == "enrolled"
    assert {e["source"] for e in await stored_events(db)} == {"micromdm"}


async def test_check_out_then_a_new_authenticate(db: Database, box: SecretBox) -> None:
    token_id = await insert_token(db, box)
    await add_devices(db, box, token_id, record(IPAD_SERIAL, "added", NOW, **PUSHED))
    await webhook(db, fixture_event("Authenticate.1.plist", created_at="2026-11-20T09:00:00Z"))
    await webhook(
        db, fixture_event("TokenUpdate.1.plist", created_at="2026-11-20T09:01:00Z", tally=1)
    )
    body = json.dumps(
        webhook_body(checkout_plist(IPAD_UDID), "mdm.CheckOut", created_at="2026-11-20T10:00:00Z")
    ).encode()
    out = await webhook(db, body)
    assert (out.recorded, out.event, out.serial_number) == (True, "checked_out", IPAD_SERIAL)
    assert (await device(db, IPAD_SERIAL))["enrollment_state"] == "checked_out"
    await webhook(db, fixture_event("Authenticate.1.plist", created_at="2026-11-20T11:30:00Z"))
    assert (await device(db, IPAD_SERIAL))["enrollment_state"] == "pushed"


async def test_token_update_from_an_unknown_udid_waits_for_its_authenticate(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    await add_devices(db, box, token_id, record(IMAC_SERIAL, "added", NOW, **PUSHED))
    early = await webhook(
        db, fixture_event("TokenUpdate.2.plist", created_at="2026-11-20T10:00:30Z", tally=1)
    )
    assert (early.recorded, early.serial_number, early.udid) == (True, None, IMAC_UDID)
    assert (await device(db, IMAC_SERIAL))["enrollment_state"] == "pushed"
    # The Authenticate (sent first by the device, delivered late) names the serial number.
    await webhook(db, fixture_event("Authenticate.2.plist", created_at="2026-11-20T10:00:00Z"))
    assert {e["serial_number"] for e in await stored_events(db)} == {IMAC_SERIAL}
    assert (await device(db, IMAC_SERIAL))["enrollment_state"] == "enrolled"


async def test_authenticate_without_token_update_fails_after_an_hour(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    await add_devices(db, box, token_id, record(IPAD_SERIAL, "added", NOW, **PUSHED))
    await webhook(db, fixture_event("Authenticate.1.plist", created_at="2026-11-20T12:00:00Z"))
    async with db.write() as session:
        await refresh_due(session, at("2026-11-20T12:59:00Z"))
    assert (await device(db, IPAD_SERIAL))["enrollment_state"] == "pushed"
    async with db.write() as session:
        await refresh_due(session, at("2026-11-20T13:01:00Z"))
    assert (await device(db, IPAD_SERIAL))["enrollment_state"] == "failed"


async def test_without_events_the_state_follows_apples_profile_status(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    await add_devices(
        db,
        box,
        token_id,
        record("AAA1", "added", NOW, profile_status="assigned"),
        record("AAA2", "added", NOW, profile_status="empty"),
        record("AAA3", "added", NOW, **PUSHED),
    )
    states = {s: (await device(db, s))["enrollment_state"] for s in ("AAA1", "AAA2", "AAA3")}
    assert states == {"AAA1": "not_contacted", "AAA2": "not_contacted", "AAA3": "pushed"}


async def test_events_before_the_device_syncs_are_kept_and_taken_over(
    db: Database, box: SecretBox
) -> None:
    events = [
        native_event({"serial_number": "newdev1", "event": kind, "at": when}, EventSource.API, NOW)
        for kind, when in (
            ("authenticated", "2026-11-19T08:00:00Z"),
            ("enrolled", "2026-11-19T08:01:00Z"),
        )
    ]
    result = await record_events(db, events, NOW)
    assert result.to_dict() == {"recorded": 2, "duplicates": 0, "unknown_serials": 1}
    token_id = await insert_token(db, box)
    await add_devices(db, box, token_id, record("NEWDEV1", "added", NOW, **PUSHED))
    row = await device(db, "NEWDEV1")
    assert (row["enrollment_state"], row["mdm_enrolled_at"]) == (
        "enrolled",
        at("2026-11-19T08:01:00Z"),
    )


async def test_native_events_are_idempotent_within_and_across_calls(
    db: Database, box: SecretBox
) -> None:
    event = {"serial_number": "C02X", "event": "enrolled", "at": "2026-11-19T08:00:00+01:00"}
    same_instant = {**event, "at": "2026-11-19T07:00:00Z", "serial_number": "c02x"}
    parsed = [native_event(e, EventSource.API, NOW) for e in (event, same_instant)]
    first = await record_events(db, parsed, NOW)
    assert (first.recorded, first.duplicates) == (1, 1)
    imported = native_event(event, EventSource.IMPORT, NOW)
    second = await record_events(db, [imported], NOW)
    assert (second.recorded, second.duplicates) == (0, 1)
    assert await event_count(db) == 1


async def test_user_channel_check_ins_change_nothing(db: Database) -> None:
    raw = plistlib.dumps(
        {"MessageType": "TokenUpdate", "UDID": IMAC_UDID, "UserID": "U1", "Topic": "t"}
    )
    body = json.dumps(webhook_body(raw, "mdm.TokenUpdate", tally=1)).encode()
    outcome = await webhook(db, body)
    assert (outcome.recorded, outcome.reason) == (False, "user_channel")
    assert await event_count(db) == 0


async def test_a_clock_far_ahead_is_taken_as_now(db: Database) -> None:
    body = fixture_event("Authenticate.2.plist", created_at="2027-01-01T00:00:00Z")
    await webhook(db, body)
    [stored] = await stored_events(db)
    assert stored["at"] <= NOW + timedelta(minutes=5)
