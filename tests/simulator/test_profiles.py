"""Profiles: Apple's field validation, get, assign (PUT and POST), remove, and throttling."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sim_fixtures import RunningSimulator, SimServer

PROFILE = {"profile_name": "Staff devices", "url": "https://mdm.example.com/enroll"}


@pytest.fixture
def server(simulator: RunningSimulator) -> SimServer:
    return simulator.create_server(devices=10)


def _define(client: httpx.Client, **fields: Any) -> str:
    response = client.post("/profile", json={**PROFILE, **fields})
    assert response.status_code == 200, response.text
    return str(response.json()["profile_uuid"])


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert (response.status_code, response.text) == (status, f'"{code}"')


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"profile_name": None}, "CONFIG_NAME_REQUIRED"),
        ({"profile_name": ""}, "CONFIG_NAME_INVALID"),
        ({"profile_name": "x" * 126}, "CONFIG_NAME_INVALID"),
        ({"url": None}, "CONFIG_URL_REQUIRED"),
        ({"url": "not a url"}, "CONFIG_URL_INVALID"),
        ({"url": "https://e.example/" + "a" * 2000}, "CONFIG_URL_INVALID"),
        ({"configuration_web_url": "ftp://x"}, "CONFIG_URL_INVALID"),
        ({"support_phone_number": "1" * 51}, "SUPPORT_PHONE_INVALID"),
        ({"support_email_address": "a" * 251}, "SUPPORT_EMAIL_INVALID"),
        ({"org_magic": "m" * 257}, "MAGIC_INVALID"),
        ({"department": "d" * 126}, "DEPARTMENT_INVALID"),
        ({"is_mdm_removable": False}, "FLAGS_INVALID"),
        ({"language": "english"}, "LOCALE_INVALID"),
        ({"region": "USA"}, "LOCALE_INVALID"),
        ({"is_supervised": "yes"}, "MALFORMED_REQUEST_BODY"),
        ({"skip_setup_items": "Siri"}, "MALFORMED_REQUEST_BODY"),
    ],
)
def test_define_validates_like_apple(
    simulator: RunningSimulator, server: SimServer, fields: dict[str, Any], code: str
) -> None:
    body = {k: v for k, v in {**PROFILE, **fields}.items() if v is not None}
    response = simulator.apple(server).post("/profile", json=body)
    _error(response, 400, code)
    assert simulator.admin.profiles(server.uuid) == []


def test_define_then_get(simulator: RunningSimulator, server: SimServer) -> None:
    client = simulator.apple(server)
    fields = {
        "is_supervised": True,
        "is_mdm_removable": False,
        "skip_setup_items": ["Siri", "TOS"],
        "department": "IT",
        "language": "en",
        "region": "US",
        "unknown_key": "dropped",
    }
    profile_uuid = _define(client, **fields)
    assert len(profile_uuid) == 32 and profile_uuid == profile_uuid.upper()
    got = client.get("/profile", params={"profile_uuid": profile_uuid}).json()
    expected = {**PROFILE, **fields, "profile_uuid": profile_uuid}
    del expected["unknown_key"]
    assert got == expected
    _error(client.get("/profile"), 400, "PROFILE_UUID_REQUIRED")
    _error(client.get("/profile", params={"profile_uuid": "0" * 32}), 404, "NOT_FOUND")


def test_version_1_profiles_lose_version_2_keys(
    simulator: RunningSimulator, server: SimServer
) -> None:
    client = simulator.apple(server, version=1)
    profile_uuid = _define(client, support_email_address="it@example.com", is_multi_user=True)
    got = client.get("/profile", params={"profile_uuid": profile_uuid}).json()
    assert "support_email_address" not in got and "is_multi_user" not in got


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_assign_then_push_then_remove(
    simulator: RunningSimulator, server: SimServer, method: str
) -> None:
    client = simulator.apple(server)
    sync_cursor = client.post("/server/devices", json={"limit": 1000}).json()["cursor"]
    profile_uuid = _define(client)
    serial = simulator.admin.serials(server.uuid, 1)[0]
    answer = client.request(
        method, "/profile/devices", json={"profile_uuid": profile_uuid, "devices": [serial, "NOPE"]}
    ).json()
    assert answer == {
        "profile_uuid": profile_uuid,
        "devices": {serial: "SUCCESS", "NOPE": "NOT_ACCESSIBLE"},
    }
    device = simulator.admin.device(server.uuid, serial)
    assert device["profile_status"] == "assigned" and device["profile_uuid"] == profile_uuid
    assert device["profile_assign_time"].endswith("Z") and "profile_push_time" not in device

    simulator.admin.mark_pushed(server.uuid, [serial])
    device = simulator.admin.device(server.uuid, serial)
    assert device["profile_status"] == "pushed" and device["profile_push_time"].endswith("Z")

    removed = client.request("DELETE", "/profile/devices", json={"devices": [serial, "NOPE"]})
    assert removed.json() == {"devices": {serial: "SUCCESS", "NOPE": "NOT_ACCESSIBLE"}}
    device = simulator.admin.device(server.uuid, serial)
    assert device["profile_status"] == "removed" and "profile_uuid" not in device

    events = client.post("/devices/sync", json={"cursor": sync_cursor}).json()["devices"]
    assert [(e["op_type"], e["profile_status"]) for e in events] == [
        ("modified", "removed"),  # every event shows the device as it is now
        ("modified", "removed"),
        ("modified", "removed"),
    ]


def test_assignment_errors(simulator: RunningSimulator, server: SimServer) -> None:
    client = simulator.apple(server)
    profile_uuid = _define(client)
    _error(client.put("/profile/devices", json={"devices": ["X"]}), 400, "PROFILE_UUID_REQUIRED")
    _error(
        client.put("/profile/devices", json={"profile_uuid": profile_uuid}),
        400,
        "DEVICE_ID_REQUIRED",
    )
    _error(
        client.put("/profile/devices", json={"profile_uuid": "F" * 32, "devices": ["X"]}),
        404,
        "NOT_FOUND",
    )
    _error(client.request("DELETE", "/profile/devices", json={}), 400, "DEVICE_ID_REQUIRED")


def test_define_with_devices_assigns_them(simulator: RunningSimulator, server: SimServer) -> None:
    serials = simulator.admin.serials(server.uuid, 2)
    answer = simulator.apple(server).post("/profile", json={**PROFILE, "devices": serials}).json()
    assert answer["devices"] == dict.fromkeys(serials, "SUCCESS")
    assert simulator.admin.device(server.uuid, serials[0])["profile_uuid"] == answer["profile_uuid"]


def test_failed_serials(simulator: RunningSimulator, server: SimServer) -> None:
    client = simulator.apple(server)
    profile_uuid = _define(client)
    serial = simulator.admin.serials(server.uuid, 1)[0]
    simulator.admin.fail_serials(server.uuid, [serial], times=1)
    body = {"profile_uuid": profile_uuid, "devices": [serial]}
    assert client.put("/profile/devices", json=body).json()["devices"] == {serial: "FAILED"}
    assert client.put("/profile/devices", json=body).json()["devices"] == {serial: "SUCCESS"}


@pytest.mark.parametrize(
    ("version", "status", "retry_after"),
    [(10, "THROTTLED", 120), (9, "THROTTLED", None), (8, "FAILED", None)],
)
def test_throttled_serials_depend_on_the_protocol_version(
    simulator: RunningSimulator,
    server: SimServer,
    version: int,
    status: str,
    retry_after: int | None,
) -> None:
    client = simulator.apple(server, version=version)
    profile_uuid = _define(client)
    throttled, free = simulator.admin.serials(server.uuid, 2)
    simulator.admin.throttle_serials(server.uuid, [throttled], 120)
    answer = client.put(
        "/profile/devices", json={"profile_uuid": profile_uuid, "devices": [throttled, free]}
    ).json()
    assert answer["devices"] == {throttled: status, free: "SUCCESS"}
    assert answer.get("retry_after_seconds") == retry_after
    # Once the wait is over, the serial can be assigned.
    simulator.admin.settings(clock_offset_seconds=121, session_idle_seconds=3600)
    again = client.put(
        "/profile/devices", json={"profile_uuid": profile_uuid, "devices": [throttled]}
    )
    assert again.json()["devices"] == {throttled: "SUCCESS"}


def test_an_assignment_rate_limit_throttles_the_excess(
    simulator: RunningSimulator, server: SimServer
) -> None:
    simulator.admin.settings(assign_rate_max_devices=3, assign_rate_window_seconds=600)
    client = simulator.apple(server)
    profile_uuid = _define(client)
    serials = simulator.admin.serials(server.uuid, 5)
    answer = client.put("/profile/devices", json={"profile_uuid": profile_uuid, "devices": serials})
    results = answer.json()
    assert list(results["devices"].values()) == ["SUCCESS"] * 3 + ["THROTTLED"] * 2
    assert 590 <= results["retry_after_seconds"] <= 600
