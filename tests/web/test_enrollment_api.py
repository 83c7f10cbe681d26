"""The enrollment routes: NanoMDM and MicroMDM webhooks with real check-in payloads, the
native endpoint, the three ways to present the ingest key, idempotency and bad bodies."""

from __future__ import annotations

import asyncio
import base64
import json
import plistlib
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, insert, select

from adesync.store.database import Database
from adesync.store.tables_enrollment import enrollment_events, mdm_devices
from adesync.store.tables_sync import devices
from adesync.store.types import utcnow
from adesync.web.roles import Role
from tests.enrollment.helpers import (
    FIXTURES,
    IMAC_SERIAL,
    IMAC_UDID,
    event_count,
    fixture_event,
    plist,
    webhook_body,
)
from tests.health.factory import add_token
from tests.web.conftest import Web

NANO = "/api/v1/webhooks/nanomdm"
MICRO = "/api/v1/webhooks/micromdm"
NATIVE = "/api/v1/enrollment-events"


def basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


async def add_imac(web: Web) -> None:
    """The iMac of the fixtures, synced on a token, its profile downloaded."""
    token_id = await add_token(web.db, "main")
    now = utcnow()
    async with web.db.write() as session:
        await session.execute(
            insert(devices).values(
                token_id=token_id,
                serial_number=IMAC_SERIAL,
                profile_status="pushed",
                profile_push_time=now - timedelta(hours=2),
                enrollment_state="pushed",
                first_seen_at=now,
                updated_at=now,
            )
        )


async def imac_state(db: Database) -> str | None:
    async with db.read() as session:
        state: str | None = (
            await session.execute(
                select(devices.c.enrollment_state).where(devices.c.serial_number == IMAC_SERIAL)
            )
        ).scalar_one()
    return state


def recent(minutes: int = 0) -> str:
    return (utcnow() - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def test_nanomdm_check_ins_enroll_the_device(web: Web) -> None:
    await add_imac(web)
    ingest = web.as_role(Role.INGEST)
    nanomdms_own = (FIXTURES / "nanomdm-webhook-Authenticate.2.json").read_bytes()
    answer = await web.client.post(NANO, content=nanomdms_own, headers=ingest)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "recorded": True,
        "event": "authenticated",
        "serial_number": IMAC_SERIAL,
        "udid": IMAC_UDID,
        "reason": None,
        "unknown_serial": False,
    }
    assert await imac_state(web.db) == "pushed"
    update = fixture_event("TokenUpdate.2.plist", created_at=recent(), tally=1)
    answer = await web.client.post(NANO, content=update, headers=ingest)
    assert answer.status_code == 200 and answer.json()["event"] == "enrolled"
    assert await imac_state(web.db) == "enrolled"


async def test_micromdm_check_ins_enroll_and_check_out(web: Web) -> None:
    await add_imac(web)
    ingest = web.as_role(Role.INGEST)
    for name, minutes in (("Authenticate.2.plist", 3), ("TokenUpdate.2.plist", 2)):
        body = fixture_event(name, created_at=recent(minutes), event_id=f"{name}-1")
        answer = await web.client.post(MICRO, content=body, headers=ingest)
        assert answer.status_code == 200 and answer.json()["recorded"], answer.text
    assert await imac_state(web.db) == "enrolled"
    checkout = plistlib.dumps({"MessageType": "CheckOut", "UDID": IMAC_UDID, "Topic": "t"})
    out = json.dumps(webhook_body(checkout, "mdm.CheckOut", created_at=recent(1)))
    answer = await web.client.post(MICRO, content=out, headers=ingest)
    assert answer.json()["event"] == "checked_out"
    assert await imac_state(web.db) == "checked_out"


async def test_the_same_webhook_twice_answers_200_and_changes_nothing(web: Web) -> None:
    await add_imac(web)
    body = fixture_event("Authenticate.2.plist", created_at=recent())
    first = await web.client.post(NANO, content=body, headers=web.as_role(Role.INGEST))
    again = await web.client.post(NANO, content=body, headers=web.as_role(Role.INGEST))
    assert (first.status_code, again.status_code) == (200, 200)
    assert (again.json()["recorded"], again.json()["reason"]) == (False, "duplicate")
    assert await event_count(web.db) == 1


async def test_other_topics_are_acknowledged(web: Web) -> None:
    body = {"topic": "mdm.Connect", "acknowledge_event": {"udid": "x", "status": "Idle"}}
    answer = await web.client.post(MICRO, json=body, headers=web.as_role(Role.INGEST))
    assert answer.status_code == 200
    assert (answer.json()["recorded"], answer.json()["reason"]) == (False, "topic_not_tracked")


async def test_an_unknown_serial_is_kept(web: Web) -> None:
    body = fixture_event("Authenticate.1.plist", created_at=recent())
    answer = await web.client.post(NANO, content=body, headers=web.as_role(Role.INGEST))
    assert answer.status_code == 200
    assert (answer.json()["recorded"], answer.json()["unknown_serial"]) == (True, True)
    assert await event_count(web.db) == 1


@pytest.mark.parametrize(
    "present",
    ["bearer", "basic", "query"],
)
async def test_the_ingest_key_is_accepted_three_ways(web: Web, present: str) -> None:
    key = web.keys[Role.INGEST]
    body = fixture_event("Authenticate.2.plist")
    if present == "bearer":
        answer = await web.client.post(
            NANO, content=body, headers={"Authorization": f"Bearer {key}"}
        )
    elif present == "basic":
        answer = await web.client.post(NANO, content=body, headers=basic("nanomdm", key))
    else:
        answer = await web.client.post(NANO, content=body, params={"key": key})
    assert answer.status_code == 200, answer.text
    assert answer.json()["recorded"]


async def test_an_admin_key_may_post_events_too(web: Web) -> None:
    answer = await web.client.post(
        NANO, content=fixture_event("Authenticate.2.plist"), headers=web.as_role(Role.ADMIN)
    )
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("headers", "params", "status", "detail"),
    [
        (
            {},
            {},
            401,
            "Send an ingest API key as a Bearer token, an HTTP Basic password or ?key=.",
        ),
        (
            {"Authorization": "Bearer ades_00000000_nope"},
            {},
            401,
            "The API key is not valid (revoked or mistyped).",
        ),
        ({}, {"key": "wrong"}, 401, "The API key is not valid (revoked or mistyped)."),
        (
            basic("nanomdm", ""),
            {},
            401,
            "Put the API key in the password of the HTTP Basic credentials.",
        ),
        (
            {"Authorization": "Basic %%%"},
            {},
            401,
            "The HTTP Basic credentials are not valid base64.",
        ),
        (
            {"Authorization": "Token abc"},
            {},
            401,
            "Send the API key as a Bearer token or an HTTP Basic password.",
        ),
    ],
)
async def test_missing_or_wrong_keys_are_refused(
    web: Web, headers: dict[str, str], params: dict[str, str], status: int, detail: str
) -> None:
    answer = await web.client.post(
        NANO, content=fixture_event("Authenticate.2.plist"), headers=headers, params=params
    )
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == detail
    assert "Basic" in answer.headers["www-authenticate"]
    assert await event_count(web.db) == 0


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
async def test_other_roles_may_not_post_events(web: Web, role: Role) -> None:
    answer = await web.client.post(
        NANO, content=fixture_event("Authenticate.2.plist"), headers=basic("x", web.keys[role])
    )
    assert answer.status_code == 403
    assert answer.json()["detail"].startswith(
        "Posting enrollment events needs an ingest or admin key"
    )


async def test_an_ingest_key_reads_nothing(web: Web) -> None:
    answer = await web.client.get("/api/v1/devices", headers=web.as_role(Role.INGEST))
    assert answer.status_code == 403


def raw_body(payload: str) -> bytes:
    return json.dumps(
        {"topic": "mdm.Authenticate", "checkin_event": {"raw_payload": payload}}
    ).encode()


NO_SERIAL = plistlib.dumps({"MessageType": "Authenticate", "UDID": IMAC_UDID, "Topic": "t"})


@pytest.mark.parametrize("path", [NANO, MICRO])
@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (raw_body("@@not base64@@"), 422, "checkin_event.raw_payload is not valid base64."),
        (
            raw_body(base64.b64encode(b"plain text, no plist").decode()),
            422,
            "checkin_event.raw_payload is not a property list.",
        ),
        (
            raw_body(base64.b64encode(NO_SERIAL).decode()),
            422,
            "The Authenticate message has no SerialNumber, so adesync cannot tell which device "
            "it is.",
        ),
        (b"", 422, "The request body is empty."),
        (b"<xml/>", 422, "The webhook body is not JSON."),
        (
            json.dumps(
                webhook_body(plist("Authenticate.2.plist") + b" " * 70_000, "mdm.Authenticate")
            ).encode(),
            413,
            "The request body is over the 64 KiB limit.",
        ),
    ],
)
async def test_bad_payloads_get_a_4xx_and_store_nothing(
    web: Web, path: str, body: bytes, status: int, detail: str
) -> None:
    answer = await web.client.post(path, content=body, headers=web.as_role(Role.INGEST))
    assert answer.status_code == status, answer.text
    problem = answer.json()
    assert problem["detail"] == detail
    assert problem["code"] in ("invalid_enrollment_event", "payload_too_large")
    assert await event_count(web.db) == 0
    async with web.db.read() as session:
        mapped = (await session.execute(select(func.count()).select_from(mdm_devices))).scalar()
    assert mapped == 0


async def test_an_oversized_body_streamed_without_a_length_is_refused(web: Web) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 8192

    answer = await web.client.post(NANO, content=chunks(), headers=web.as_role(Role.INGEST))
    assert answer.status_code == 413
    assert await event_count(web.db) == 0


async def test_native_events_one_or_many(web: Web) -> None:
    await add_imac(web)
    ingest = web.as_role(Role.INGEST)
    one = {"serial_number": IMAC_SERIAL, "event": "authenticated", "at": recent(5)}
    answer = await web.client.post(NATIVE, json=one, headers=ingest)
    assert answer.status_code == 201
    assert answer.json() == {"recorded": 1, "duplicates": 0, "unknown_serials": 0}
    many = [one, {"serial_number": IMAC_SERIAL, "event": "enrolled", "at": recent(4)}]
    answer = await web.client.post(NATIVE, json=many, headers=ingest)
    assert (answer.status_code, answer.json()["recorded"], answer.json()["duplicates"]) == (
        201,
        1,
        1,
    )
    assert await imac_state(web.db) == "enrolled"
    repeat = await web.client.post(NATIVE, json=many, headers=ingest)
    assert repeat.status_code == 200 and repeat.json()["duplicates"] == 2
    assert await event_count(web.db) == 2


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {"serial_number": "X1", "event": "installed", "at": "2026-01-01T00:00:00Z"},
            "event 'installed' is not one of authenticated, enrolled, checked_out.",
        ),
        (
            {"serial_number": "X1", "event": "enrolled", "at": "2026-01-01T00:00:00"},
            "at '2026-01-01T00:00:00' has no time zone; add Z for UTC or an offset.",
        ),
        ({"serial_number": "X1", "event": "enrolled"}, "at is missing."),
        ({"event": "enrolled", "at": "2026-01-01T00:00:00Z"}, "serial_number is missing."),
        (
            [{"serial_number": "X1", "event": "enrolled", "at": "2026-01-01T00:00:00Z"}, "x"],
            "Event 2: An event must be an object with serial_number, event, at.",
        ),
        ([], "The array holds no events."),
        (
            {"serial_number": "X1", "event": "enrolled", "at": "0001-01-01T00:00:00+14:00"},
            "at '0001-01-01T00:00:00+14:00' is out of range.",
        ),
        (
            {"serial_number": "X1", "event": "enrolled", "at": "2999-01-01T00:00:00Z"},
            "at 2999-01-01T00:00:00Z is in the future.",
        ),
    ],
)
async def test_bad_native_events_store_nothing(web: Web, body: Any, detail: str) -> None:
    answer = await web.client.post(NATIVE, json=body, headers=web.as_role(Role.INGEST))
    assert answer.status_code == 422
    assert answer.json()["detail"] == detail
    assert await event_count(web.db) == 0


async def test_too_many_native_events_in_one_request(web: Web) -> None:
    item = {"serial_number": "X1", "event": "enrolled", "at": "2026-01-01T00:00:00Z"}
    answer = await web.client.post(NATIVE, json=[item] * 501, headers=web.as_role(Role.INGEST))
    assert (answer.status_code, answer.json()["detail"]) == (
        422,
        "Send at most 500 events per request.",
    )


async def test_the_routes_are_in_the_openapi_document(web: Web) -> None:
    document = (await web.client.get("/api/v1/openapi.json")).json()
    for path in (NANO, MICRO, NATIVE):
        assert "post" in document["paths"][path]


@pytest.fixture
async def loopback(web: Web) -> AsyncIterator[str]:
    """The same app served by uvicorn on a loopback port, in this event loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(web.app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await task
    sock.close()


async def test_the_key_in_the_webhook_urls_userinfo_works_over_real_http(
    web: Web, loopback: str
) -> None:
    """NanoMDM is configured with -webhook-url http://nanomdm:KEY@host/...; Go's client (like
    httpx) sends the userinfo as HTTP Basic credentials."""
    await add_imac(web)
    key = web.keys[Role.INGEST]
    url = f"http://nanomdm:{key}@{loopback}{NANO}"
    body = (FIXTURES / "nanomdm-webhook-Authenticate.2.json").read_bytes()
    async with httpx.AsyncClient() as client:
        answer = await client.post(url, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["serial_number"] == IMAC_SERIAL
    async with web.db.read() as session:
        stored = (await session.execute(select(enrollment_events.c.source))).scalars().all()
    assert stored == ["nanomdm"]
