"""Fault injection: depsim-style scripts, outages, throttling, slow answers."""

from __future__ import annotations

import httpx
import pytest

from tests.sim_fixtures import RunningSimulator, SimAdminError, SimServer


@pytest.fixture
def server(simulator: RunningSimulator) -> SimServer:
    return simulator.create_server(devices=5)


def _answer(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.text


def test_depsim_session_script_in_order(simulator: RunningSimulator, server: SimServer) -> None:
    names = [
        "bad_request",
        "forbidden_access_denied",
        "forbidden_t_c_not_signed",
        "invalid_method",
        "unauthorized",
        "too_many_requests",
    ]
    simulator.admin.faults(
        scripts={"get_session_responses": [{"count": 1, "response": n} for n in names]}
    )
    answers = [_answer(simulator.session_response(server)) for _ in names]
    assert answers == [
        (400, ""),
        (403, '"ACCESS_DENIED"'),
        (403, '"T_C_NOT_SIGNED"'),
        (405, ""),
        (401, '"UNAUTHORIZED"'),
        (429, '"TOO_MANY_REQUESTS"'),
    ]
    assert simulator.session_response(server).status_code == 200  # script used up


def test_counts_and_success_entries(simulator: RunningSimulator, server: SimServer) -> None:
    client = simulator.apple(server)
    simulator.admin.script(
        "fetch_devices", (1, "success"), (2, "bad_request_invalid_cursor"), (1, "forbidden")
    )
    answers = [client.post("/server/devices", json={}).status_code for _ in range(5)]
    assert answers == [200, 400, 400, 403, 200]
    assert simulator.admin.faults()["scripts"] == {}


def test_every_apple_code_can_be_scripted(simulator: RunningSimulator, server: SimServer) -> None:
    client = simulator.apple(server)
    simulator.admin.script(
        "sync_devices",
        (1, "bad_request_expired_cursor"),
        (1, "bad_request_cursor_required"),
        (1, "forbidden_token_rejected"),
        (1, "internal_server_error"),
    )
    answers = [_answer(client.post("/devices/sync", json={"cursor": "x"})) for _ in range(4)]
    assert answers == [
        (400, '"EXPIRED_CURSOR"'),
        (400, '"CURSOR_REQUIRED"'),
        (403, '"token_rejected"'),
        (500, ""),
    ]


def test_per_device_scripted_answers_change_nothing(
    simulator: RunningSimulator, server: SimServer
) -> None:
    client = simulator.apple(server)
    profile = client.post("/profile", json={"profile_name": "p", "url": "https://m.example"})
    profile_uuid = profile.json()["profile_uuid"]
    serial = simulator.admin.serials(server.uuid, 1)[0]
    simulator.admin.faults(
        scripts={
            "assign_profile": [
                {"count": 1, "response": "not_accessible"},
                {"count": 1, "response": "throttled", "retry_after": 90},
            ]
        }
    )
    body = {"profile_uuid": profile_uuid, "devices": [serial]}
    assert client.put("/profile/devices", json=body).json()["devices"] == {serial: "NOT_ACCESSIBLE"}
    throttled = client.put("/profile/devices", json=body).json()
    assert throttled["devices"] == {serial: "THROTTLED"} and throttled["retry_after_seconds"] == 90
    assert simulator.admin.device(server.uuid, serial)["profile_status"] == "empty"
    assert client.put("/profile/devices", json=body).json()["devices"] == {serial: "SUCCESS"}


def test_faults_can_target_one_server(simulator: RunningSimulator, server: SimServer) -> None:
    other = simulator.create_server("Other", devices=1)
    simulator.admin.faults(server.uuid, outage={"mode": "503"})
    assert simulator.session_response(server).status_code == 503
    assert simulator.session_response(other).status_code == 200
    simulator.admin.clear_faults(server.uuid)
    assert simulator.session_response(server).status_code == 200


@pytest.mark.parametrize(("mode", "status"), [("500", 500), ("503", 503)])
def test_outage_switch(
    simulator: RunningSimulator, server: SimServer, mode: str, status: int
) -> None:
    client = simulator.apple(server)
    simulator.admin.faults(outage={"mode": mode})
    for response in (client.get("/account"), simulator.session_response(server)):
        assert _answer(response) == (status, "")
        assert "retry-after" not in response.headers
    simulator.admin.faults(outage=None)
    assert client.get("/account").status_code == 200


def test_outage_can_drop_connections(simulator: RunningSimulator, server: SimServer) -> None:
    client = simulator.apple(server)
    simulator.admin.faults(outage={"mode": "drop", "endpoints": ["account"]})
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/account")
    assert client.post("/server/devices", json={}).status_code == 200  # only /account drops
    simulator.admin.clear_faults()
    simulator.admin.script("account", (1, "dropped_connection"))
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/account")
    assert client.get("/account").status_code == 200


@pytest.mark.parametrize(("status", "body"), [(429, '"TOO_MANY_REQUESTS"'), (503, "")])
def test_throttle_switch_sends_retry_after(
    simulator: RunningSimulator, server: SimServer, status: int, body: str
) -> None:
    client = simulator.apple(server)
    simulator.admin.faults(throttle={"status": status, "retry_after": 30})
    response = client.post("/server/devices", json={})
    assert _answer(response) == (status, body)
    assert response.headers["retry-after"] == "30"


def test_slow_answers(simulator: RunningSimulator, server: SimServer) -> None:
    client = simulator.apple(server)
    simulator.admin.faults(delay_ms=1500)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/account", timeout=0.3)
    simulator.admin.faults(delay_ms=0)
    assert client.get("/account").status_code == 200


@pytest.mark.parametrize(
    "faults",
    [
        {"scripts": {"nowhere": [{"count": 1, "response": "forbidden"}]}},
        {"scripts": {"session": [{"count": 0, "response": "forbidden"}]}},
        {"scripts": {"session": [{"count": 1, "response": "teapot"}]}},
        {"scripts": {"account": [{"count": 1, "response": "not_accessible"}]}},
        {"outage": {"mode": "404"}},
        {"throttle": {"status": 503}},
        {"delay_ms": -1},
    ],
)
def test_bad_fault_settings_are_refused_and_change_nothing(
    simulator: RunningSimulator, faults: dict[str, object]
) -> None:
    simulator.admin.faults(delay_ms=5)
    before = simulator.admin.call("GET", "/faults")
    with pytest.raises(SimAdminError) as refused:
        simulator.admin.faults(**faults)
    assert refused.value.status == 400 and refused.value.message.endswith(".")
    assert simulator.admin.call("GET", "/faults") == before
