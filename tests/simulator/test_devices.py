"""Fetch, sync and device details: snapshots, the event log, cursors and protocol gating."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.sim_fixtures import RunningSimulator, SimServer


def _fetch_all(client: httpx.Client, limit: int = 10) -> tuple[list[dict[str, Any]], str]:
    devices: list[dict[str, Any]] = []
    body: dict[str, Any] = {"limit": limit}
    while True:
        page = client.post("/server/devices", json=body).json()
        devices += page["devices"]
        body["cursor"] = page["cursor"]
        if not page["more_to_follow"]:
            return devices, page["cursor"]


def _sync(client: httpx.Client, cursor: str, limit: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"cursor": cursor}
    if limit is not None:
        body["limit"] = limit
    response = client.post("/devices/sync", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert (response.status_code, response.text) == (status, f'"{code}"')
    assert response.headers["content-type"] == "text/plain;charset=UTF8"


@pytest.fixture
def server(simulator: RunningSimulator) -> SimServer:
    return simulator.create_server(devices=25)


def test_fetch_pages_every_device_once_then_exhausts(
    simulator: RunningSimulator, server: SimServer
) -> None:
    client = simulator.apple(server)
    first = client.post("/server/devices", json={"limit": 10})
    assert first.headers["content-type"] == "application/json;charset=UTF8"
    page = first.json()
    assert set(page) == {"devices", "cursor", "more_to_follow", "fetched_until"}
    assert page["more_to_follow"] is True and len(page["devices"]) == 10
    devices, cursor = _fetch_all(client)
    serials = [d["serial_number"] for d in devices]
    assert len(serials) == len(set(serials)) == 25
    assert all("op_type" not in d and "op_date" not in d for d in devices)
    dates = [d["device_assigned_date"] for d in devices]
    assert dates == sorted(dates)  # chronological, as Apple lists them
    assert serials == simulator.admin.serials(server.uuid, 25)
    _error(client.post("/server/devices", json={"cursor": cursor}), 400, "EXHAUSTED_CURSOR")


def test_device_records_look_like_apples(simulator: RunningSimulator, server: SimServer) -> None:
    device = simulator.apple(server).post("/server/devices", json={"limit": 1}).json()["devices"][0]
    assert set(device) == {
        "serial_number",
        "model",
        "description",
        "color",
        "os",
        "device_family",
        "profile_status",
        "device_assigned_date",
        "device_assigned_by",
    }
    assert len(device["serial_number"]) == 12 and device["serial_number"].isupper()
    assert device["profile_status"] == "empty"
    assert (
        device["device_assigned_date"].endswith("Z") and len(device["device_assigned_date"]) == 20
    )
    assert device["device_assigned_by"] == "ade-admin@example.com"


def test_limit_defaults_to_100_and_is_clamped_to_1000(simulator: RunningSimulator) -> None:
    server = simulator.create_server(devices=1100)
    client = simulator.apple(server)
    assert len(client.post("/server/devices", json={}).json()["devices"]) == 100
    assert len(client.post("/server/devices").json()["devices"]) == 100  # no body at all
    assert len(client.post("/server/devices", json={"limit": 5000}).json()["devices"]) == 1000
    assert len(client.post("/server/devices", json={"limit": 0}).json()["devices"]) == 1
    limits = {u["uri"]: u.get("limit") for u in client.get("/account").json()["urls"]}
    assert limits["/server/devices"] == limits["/devices/sync"] == {"default": 100, "maximum": 1000}


def test_sync_returns_the_events_after_the_cursor(
    simulator: RunningSimulator, server: SimServer
) -> None:
    client = simulator.apple(server)
    _, cursor = _fetch_all(client)
    empty = _sync(client, cursor)
    assert empty["devices"] == [] and empty["more_to_follow"] is False

    added = simulator.admin.add_devices(server.uuid, count=2)
    existing = simulator.admin.serials(server.uuid, 1)[0]
    simulator.admin.modify_devices(server.uuid, [{"serial_number": existing, "asset_tag": "A-1"}])
    page = _sync(client, empty["cursor"], limit=2)
    assert [(d["serial_number"], d["op_type"]) for d in page["devices"]] == [
        (added[0], "added"),
        (added[1], "added"),
    ]
    assert page["more_to_follow"] is True
    assert page["devices"][0]["op_date"] == page["devices"][0]["device_assigned_date"]
    rest = _sync(client, page["cursor"])
    assert [(d["serial_number"], d["op_type"], d["asset_tag"]) for d in rest["devices"]] == [
        (existing, "modified", "A-1")
    ]
    assert rest["more_to_follow"] is False
    assert _sync(client, rest["cursor"])["devices"] == []


def test_a_fetch_is_a_snapshot_and_later_changes_come_by_sync(
    simulator: RunningSimulator, server: SimServer
) -> None:
    client = simulator.apple(server)
    page = client.post("/server/devices", json={"limit": 10}).json()
    added = simulator.admin.add_devices(server.uuid, count=1)
    devices, cursor = page["devices"], page["cursor"]
    while True:
        page = client.post("/server/devices", json={"cursor": cursor, "limit": 10}).json()
        devices += page["devices"]
        cursor = page["cursor"]
        if not page["more_to_follow"]:
            break
    assert added[0] not in {d["serial_number"] for d in devices} and len(devices) == 25
    assert [d["serial_number"] for d in _sync(client, cursor)["devices"]] == added
    second, _ = _fetch_all(client)  # a new fetch includes it
    assert added[0] in {d["serial_number"] for d in second}


def test_moving_devices_between_servers(simulator: RunningSimulator, server: SimServer) -> None:
    other = simulator.create_server("Other MDM", devices=3)
    old_client, new_client = simulator.apple(server), simulator.apple(other)
    _, old_cursor = _fetch_all(old_client)
    _, new_cursor = _fetch_all(new_client)
    moving = simulator.admin.serials(server.uuid, 2)
    simulator.admin.move_devices(moving[:1], other.uuid)
    simulator.admin.move_devices(moving[1:], other.uuid, op_type="modified")  # the ABM quirk

    old_events = _sync(old_client, old_cursor)["devices"]
    assert [(d["serial_number"], d["op_type"]) for d in old_events] == [
        (moving[0], "deleted"),
        (moving[1], "deleted"),
    ]
    assert "profile_status" not in old_events[0]  # deleted records carry identity only
    new_events = _sync(new_client, new_cursor)["devices"]
    assert [(d["serial_number"], d["op_type"]) for d in new_events] == [
        (moving[0], "added"),
        (moving[1], "modified"),
    ]
    assert new_events[0]["device_assigned_by"] == "ade-admin@example.com"
    old_all, _ = _fetch_all(old_client)
    new_all, _ = _fetch_all(new_client)
    assert len(old_all) == 23 and len(new_all) == 5
    details = old_client.post("/devices", json={"devices": moving}).json()["devices"]
    assert details == {s: {"response_status": "NOT_FOUND"} for s in moving}


def test_moving_a_device_back_lists_it_once(simulator: RunningSimulator, server: SimServer) -> None:
    other = simulator.create_server("Other MDM", devices=0)
    serial = simulator.admin.serials(server.uuid, 1)[0]
    simulator.admin.move_devices([serial], other.uuid)
    simulator.admin.move_devices([serial], server.uuid)
    devices, _ = _fetch_all(simulator.apple(server))
    assert [d["serial_number"] for d in devices].count(serial) == 1 and len(devices) == 25


def test_cursor_errors(simulator: RunningSimulator, server: SimServer) -> None:
    client = simulator.apple(server)
    _, cursor = _fetch_all(client)
    _error(client.post("/devices/sync", json={}), 400, "CURSOR_REQUIRED")
    _error(client.post("/devices/sync", json={"cursor": "garbage!"}), 400, "INVALID_CURSOR")
    raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    forged = raw.replace(":0:", ":1:", 1)
    forged_cursor = base64.b64encode(forged.encode()).decode().rstrip("=")
    _error(client.post("/devices/sync", json={"cursor": forged_cursor}), 400, "INVALID_CURSOR")
    other = simulator.create_server("Other MDM", devices=1)
    _, other_cursor = _fetch_all(simulator.apple(other))
    _error(client.post("/devices/sync", json={"cursor": other_cursor}), 400, "INVALID_CURSOR")
    _error(client.post("/server/devices", json={"cursor": "MTIz"}), 400, "INVALID_CURSOR")


def test_a_sync_cursor_on_fetch_is_exhausted(
    simulator: RunningSimulator, server: SimServer
) -> None:
    client = simulator.apple(server)
    _, cursor = _fetch_all(client)
    sync_cursor = _sync(client, cursor)["cursor"]
    _error(client.post("/server/devices", json={"cursor": sync_cursor}), 400, "EXHAUSTED_CURSOR")


def test_cursors_expire_after_seven_days(simulator: RunningSimulator, server: SimServer) -> None:
    simulator.admin.settings(session_idle_seconds=30 * 86400)  # only the cursors should age
    client = simulator.apple(server)
    _, cursor = _fetch_all(client)
    simulator.admin.settings(clock_offset_seconds=6 * 86400)
    fresh = _sync(client, cursor)["cursor"]
    simulator.admin.settings(clock_offset_seconds=7 * 86400 + 60)
    _error(client.post("/devices/sync", json={"cursor": cursor}), 400, "EXPIRED_CURSOR")
    assert _sync(client, fresh)["devices"] == []  # each answer issues a fresh cursor


def test_answers_in_the_same_millisecond_get_cursors_of_their_own(
    simulator: RunningSimulator, server: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = simulator.apple(server)
    _, cursor = _fetch_all(client)
    frozen = simulator.sim.now()
    monkeypatch.setattr(simulator.sim, "clock", lambda: frozen)
    first = _sync(client, cursor)["cursor"]
    second = _sync(client, first)["cursor"]
    assert len({cursor, first, second}) == 3
    simulator.admin.expire_cursors(server.uuid, first)
    assert client.post("/devices/sync", json={"cursor": second}).status_code == 200


def test_cursors_can_be_expired_by_the_admin(
    simulator: RunningSimulator, server: SimServer
) -> None:
    client = simulator.apple(server)
    _, cursor = _fetch_all(client)
    first = _sync(client, cursor)["cursor"]
    second = _sync(client, first)["cursor"]
    simulator.admin.expire_cursors(server.uuid, first)
    _error(client.post("/devices/sync", json={"cursor": first}), 400, "EXPIRED_CURSOR")
    assert client.post("/devices/sync", json={"cursor": second}).status_code == 200
    simulator.admin.expire_cursors(server.uuid)
    _error(client.post("/devices/sync", json={"cursor": second}), 400, "EXPIRED_CURSOR")


def test_device_details(simulator: RunningSimulator, server: SimServer) -> None:
    client = simulator.apple(server)
    serial = simulator.admin.serials(server.uuid, 1)[0]
    answer = client.post("/devices", json={"devices": [serial, "NOTASERIAL"]}).json()["devices"]
    assert answer["NOTASERIAL"] == {"response_status": "NOT_FOUND"}
    assert answer[serial]["response_status"] == "SUCCESS"
    assert answer[serial]["serial_number"] == serial and "model" in answer[serial]
    _error(client.post("/devices", json={"devices": []}), 400, "DEVICE_ID_REQUIRED")
    _error(client.post("/devices", json={}), 400, "DEVICE_ID_REQUIRED")


def test_malformed_bodies(simulator: RunningSimulator, server: SimServer) -> None:
    client = simulator.apple(server)
    for path in ("/server/devices", "/devices/sync", "/devices", "/profile/devices"):
        _error(client.post(path, content=b"{not json"), 400, "MALFORMED_REQUEST_BODY")
    _error(client.post("/server/devices", json={"limit": "ten"}), 400, "MALFORMED_REQUEST_BODY")
    _error(client.post("/server/devices", json=[1]), 400, "MALFORMED_REQUEST_BODY")


def test_disown_removes_devices(simulator: RunningSimulator, server: SimServer) -> None:
    client = simulator.apple(server)
    _, cursor = _fetch_all(client)
    serial = simulator.admin.serials(server.uuid, 1)[0]
    answer = client.post("/devices/disown", json={"devices": [serial, "UNKNOWN"]}).json()
    assert answer == {"devices": {serial: "SUCCESS", "UNKNOWN": "NOT_ACCESSIBLE"}}
    assert [(d["serial_number"], d["op_type"]) for d in _sync(client, cursor)["devices"]] == [
        (serial, "deleted")
    ]
    _error(client.post("/devices/disown", json={}), 400, "DEVICE_ID_REQUIRED")


def _first_ipad(simulator: RunningSimulator, server: SimServer) -> str:
    return next(
        d["serial_number"]
        for d in simulator.admin.devices(server.uuid, 0, 100)
        if d["device_family"] == "iPad"
    )


@pytest.mark.parametrize(
    ("version", "os_name", "has_family", "has_deadline"),
    [
        (1, None, False, False),
        (6, "iOS", True, False),
        (7, "iPadOS", True, False),
        (8, "iPadOS", True, True),
    ],
)
def test_protocol_version_gates_device_fields(
    simulator: RunningSimulator,
    version: int,
    os_name: str | None,
    has_family: bool,
    has_deadline: bool,
) -> None:
    server = simulator.create_server(devices=60)
    ipad = _first_ipad(simulator, server)
    simulator.admin.modify_devices(
        server.uuid, [{"serial_number": ipad, "mdm_migration_deadline": "2027-01-01T00:00:00Z"}]
    )
    client = simulator.apple(server, version=version)
    devices, _ = _fetch_all(client, limit=100)
    by_serial = {d["serial_number"]: d for d in devices}
    assert by_serial[ipad].get("os") == os_name
    assert ("device_family" in by_serial[ipad]) is has_family
    assert ("mdm_migration_deadline" in by_serial[ipad]) is has_deadline
    generated = next(d for d in devices if d["serial_number"] != ipad and d.get("os") != "OSX")
    assert ("os" in generated) is has_family
    if version < 7:
        assert all(d.get("os") != "iPadOS" for d in devices)


def test_account_fields_depend_on_the_protocol_version(
    simulator: RunningSimulator, server: SimServer
) -> None:
    v3 = simulator.apple(server, version=3).get("/account").json()
    assert {
        "server_name",
        "server_uuid",
        "admin_id",
        "org_name",
        "org_email",
        "org_phone",
        "org_address",
        "urls",
        "org_type",
        "org_version",
        "org_id",
        "org_id_hash",
    } <= set(v3)
    v2 = simulator.apple(server, version=2).get("/account").json()
    assert "urls" not in v2 and "org_type" not in v2 and v2["server_uuid"] == server.uuid


def test_servers_carry_admin_and_org_fields(simulator: RunningSimulator) -> None:
    answer = simulator.admin.create_server(
        name="School MDM",
        admin_id="jane.doe@gmail.com",
        org={"name": "Springfield School", "domain": "springfield.example", "org_type": "edu"},
    )
    credentials = simulator.admin.credentials(answer["server_uuid"])
    token = simulator.session_token(credentials)
    account = simulator.client(session=token).get("/account").json()
    assert account["admin_id"] == "jane.doe@gmail.com"
    assert account["org_name"] == "Springfield School" and account["org_type"] == "edu"
    assert account["org_email"] == "it@springfield.example"


def test_wrong_method_and_unknown_path(simulator: RunningSimulator, server: SimServer) -> None:
    client = simulator.apple(server)
    wrong = client.get("/server/devices")
    assert (wrong.status_code, wrong.text) == (405, "")
    _error(client.get("/nowhere"), 404, "NOT_FOUND")


def test_activation_lock(simulator: RunningSimulator) -> None:
    server = simulator.create_server(devices=80)
    devices = simulator.admin.devices(server.uuid, 0, 80)
    phone = next(d["serial_number"] for d in devices if d["device_family"] == "iPhone")
    tv = next(d["serial_number"] for d in devices if d["device_family"] == "AppleTV")
    client = simulator.apple(server)

    def lock(serial: str, **extra: str) -> httpx.Response:
        return client.post("/device/activationlock", json={"device": serial, **extra})

    escrow = "ab" * 32
    assert lock(phone, escrow_key=escrow, lost_message="Call IT").json() == {
        "serial_number": phone,
        "response_status": "SUCCESS",
    }
    assert lock(phone).json()["response_status"] == "DEVICE_ALREADY_LOCKED"
    assert lock(tv).json()["response_status"] == "DEVICE_NOT_SUPPORTED"
    assert lock("NOTMINE").json()["response_status"] == "NOT_ACCESSIBLE"
    _error(lock(phone, escrow_key="short"), 400, "MALFORMED_REQUEST_BODY")
    _error(client.post("/device/activationlock", json={}), 400, "MALFORMED_REQUEST_BODY")
    old = simulator.apple(server, version=1)
    _error(old.post("/device/activationlock", json={"device": phone}), 404, "NOT_FOUND")
