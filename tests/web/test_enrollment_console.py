"""Enrollment in the console and the device API: the device's steps and timeline, the token's
funnel, and the device list filtered by enrollment state."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert

from adesync.enrollment import EventSource, native_event, record_events
from adesync.store.tables_sync import devices
from adesync.store.types import utcnow
from adesync.web.roles import Role
from tests.health.factory import add_token
from tests.web.conftest import Web
from tests.web.test_console import sign_in


async def seed(web: Web) -> None:
    """Token ``lab``: four devices; ENR1 enrolled (events), PUSH1 pushed, NEW1 and NEW2 only
    assigned."""
    token_id = await add_token(web.db, "lab")
    now = utcnow()
    rows = [
        ("ENR1", "pushed", now - timedelta(days=2)),
        ("PUSH1", "pushed", now - timedelta(days=2)),
        ("NEW1", "assigned", None),
        ("NEW2", "assigned", None),
    ]
    async with web.db.write() as session:
        await session.execute(
            insert(devices),
            [
                {
                    "token_id": token_id,
                    "serial_number": serial,
                    "profile_status": status,
                    "profile_assign_time": now - timedelta(days=3),
                    "profile_push_time": pushed,
                    "enrollment_state": "pushed" if pushed else "not_contacted",
                    "first_seen_at": now,
                    "updated_at": now,
                }
                for serial, status, pushed in rows
            ],
        )
    events = [
        native_event(
            {
                "serial_number": "ENR1",
                "event": kind,
                "at": (now - timedelta(days=2, minutes=m)).isoformat(),
            },
            EventSource.API,
            now,
        )
        for kind, m in (("authenticated", 2), ("enrolled", 1))
    ]
    await record_events(web.db, events, now)


async def test_the_device_page_shows_the_steps_and_the_mdm_events(web: Web) -> None:
    await seed(web)
    await sign_in(web)
    page = await web.client.get("/tokens/lab/devices/ENR1")
    assert page.status_code == 200
    html = page.text
    assert 'id="enrollment-steps"' in html
    for step in (
        "Profile assigned (Apple)",
        "Profile downloaded (Apple)",
        "Authenticated with the MDM",
        "Enrolled in the MDM",
    ):
        assert step in html
    assert "enrollment: <strong>authenticated</strong>" in html
    assert 'enrollment: <strong>enrolled</strong> <span class="muted">(api)</span>' in html
    assert "badge enrollment-enrolled" in html


async def test_the_token_page_shows_the_funnel(web: Web) -> None:
    await seed(web)
    await sign_in(web)
    html = (await web.client.get("/tokens/lab")).text
    assert 'id="enrollment-funnel"' in html
    assert '<meter min="0" max="4" value="4">' in html  # assigned: all four
    assert '<meter min="0" max="4" value="2">' in html  # downloaded: ENR1, PUSH1
    assert '<meter min="0" max="4" value="1">' in html  # enrolled: ENR1
    assert "/devices?token=lab&amp;enrollment_state=pushed" in html


async def test_without_events_the_funnel_says_how_to_get_them(web: Web) -> None:
    token_id = await add_token(web.db, "quiet")
    now = utcnow()
    async with web.db.write() as session:
        await session.execute(
            insert(devices).values(
                token_id=token_id,
                serial_number="Q1",
                profile_status="pushed",
                enrollment_state="pushed",
                first_seen_at=now,
                updated_at=now,
            )
        )
    await sign_in(web)
    html = (await web.client.get("/tokens/quiet")).text
    assert "No MDM enrollment events have arrived for these devices" in html


async def test_the_device_list_filters_by_enrollment_state(web: Web) -> None:
    await seed(web)
    await sign_in(web)
    html = (await web.client.get("/devices?enrollment_state=not_contacted")).text
    assert "NEW1" in html and "NEW2" in html and "ENR1" not in html
    assert '<option value="not_contacted" selected>' in html


async def test_the_device_api_merges_the_timeline(web: Web) -> None:
    await seed(web)
    answer = await web.client.get(
        "/api/v1/tokens/lab/devices/ENR1", headers=web.as_role(Role.VIEWER)
    )
    assert answer.status_code == 200
    document = answer.json()
    assert document["enrollment_state"] == "enrolled"
    assert [(e["kind"], e["detail"]) for e in document["timeline"]] == [
        ("enrollment", "authenticated"),
        ("enrollment", "enrolled"),
    ]
    listed = await web.client.get(
        "/api/v1/devices", params={"enrollment_state": "pushed"}, headers=web.as_role(Role.VIEWER)
    )
    assert [d["serial_number"] for d in listed.json()["items"]] == ["PUSH1"]
    wrong = await web.client.get(
        "/api/v1/devices", params={"enrollment_state": "done"}, headers=web.as_role(Role.VIEWER)
    )
    assert wrong.status_code == 422
