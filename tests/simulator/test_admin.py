"""The ``/_sim`` admin API: what it changes, and that bad input changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sim_fixtures import RunningSimulator, SimAdminError, SimServer


@pytest.fixture
def server(simulator: RunningSimulator) -> SimServer:
    return simulator.create_server(devices=5)


def _refused(call: Any, status: int = 400) -> str:
    with pytest.raises(SimAdminError) as refused:
        call()
    assert refused.value.status == status
    message = refused.value.message
    assert message.endswith(".") and "\n" not in message
    return message


def test_state_lists_orgs_servers_and_settings(
    simulator: RunningSimulator, server: SimServer
) -> None:
    state = simulator.admin.state()
    assert state["seed"] == 1 and state["default_devices"] == 25
    assert [s["server_uuid"] for s in state["servers"]] == [server.uuid]
    assert state["servers"][0]["device_count"] == 5
    assert state["orgs"][0]["org_id"] == state["default_org_id"] == server.org_id
    assert "access_secret" not in str(state)  # no secrets in the overview
    health = httpx.get(f"{simulator.base_url}/_sim/health").json()
    assert health["ok"] is True


def test_explicit_devices_can_be_added(simulator: RunningSimulator, server: SimServer) -> None:
    serials = simulator.admin.add_devices(
        server.uuid,
        devices=[{"serial_number": "C02XYZ123ABC", "model": "Mac mini", "asset_tag": "T-9"}],
    )
    assert serials == ["C02XYZ123ABC"]
    client = simulator.apple(server)
    details = client.post("/devices", json={"devices": serials}).json()["devices"]
    assert details["C02XYZ123ABC"]["model"] == "Mac mini"
    assert details["C02XYZ123ABC"]["asset_tag"] == "T-9"
    message = _refused(
        lambda: simulator.admin.add_devices(
            server.uuid, devices=[{"serial_number": "C02XYZ123ABC"}]
        ),
        409,
    )
    assert "already assigned" in message


def test_bad_device_changes_change_nothing(simulator: RunningSimulator, server: SimServer) -> None:
    serial = simulator.admin.serials(server.uuid, 1)[0]
    before = simulator.admin.state()["servers"][0]["event_count"]
    _refused(
        lambda: simulator.admin.modify_devices(
            server.uuid,
            [
                {"serial_number": serial, "asset_tag": "ok"},
                {"serial_number": "NOPE", "color": "RED"},
            ],
        ),
        404,
    )
    _refused(
        lambda: simulator.admin.modify_devices(
            server.uuid, [{"serial_number": serial, "profile_status": "pushed"}]
        )
    )
    _refused(lambda: simulator.admin.add_devices(server.uuid, devices=[{"colour": "RED"}]))
    _refused(lambda: simulator.admin.add_devices(server.uuid, count=-1))
    _refused(lambda: simulator.admin.move_devices(["NOPE"], server.uuid), 404)
    _refused(lambda: simulator.admin.mark_pushed(server.uuid, [serial]), 409)
    _refused(lambda: simulator.admin.throttle_serials(server.uuid, [serial], 0))
    assert simulator.admin.state()["servers"][0]["event_count"] == before
    assert "asset_tag" not in simulator.admin.device(server.uuid, serial)


def test_unknown_things_are_404(simulator: RunningSimulator) -> None:
    _refused(lambda: simulator.admin.credentials("0" * 32), 404)
    _refused(lambda: simulator.admin.set_terms_pending("nope"), 404)
    _refused(lambda: simulator.admin.device("0" * 32, "X"), 404)


def test_bad_settings_are_refused_and_change_nothing(simulator: RunningSimulator) -> None:
    before = simulator.admin.settings()
    _refused(lambda: simulator.admin.settings(session_idle_seconds=60, colour=1))
    _refused(lambda: simulator.admin.settings(session_rotate_every="often"))
    _refused(lambda: simulator.admin.settings(page_limit_default=2000))
    assert simulator.admin.settings() == before
    after = simulator.admin.settings(page_limit_maximum=500, page_limit_default=50)
    assert (after["page_limit_default"], after["page_limit_maximum"]) == (50, 500)


def test_bad_requests_get_a_json_sentence(simulator: RunningSimulator) -> None:
    response = httpx.post(f"{simulator.base_url}/_sim/servers", content=b"{nope")
    assert response.status_code == 400
    assert response.json() == {"error": "The request body is not valid JSON."}
    _refused(lambda: simulator.admin.create_server(name=""))
    _refused(lambda: simulator.admin.create_server(name="x", devices="many"))
    _refused(lambda: simulator.admin.create_server(name="x", token_expiry="soon"))
    _refused(lambda: simulator.admin.create_server(name="x", admin_id="nobody"))
    _refused(lambda: simulator.admin.create_org("Bad", domain="not a domain"))
    assert simulator.admin.state()["servers"] == []


def test_new_orgs_and_their_servers(simulator: RunningSimulator) -> None:
    org = simulator.admin.create_org("Globex", domain="globex.example", org_version="v1")
    assert org["email"] == "it@globex.example" and len(org["org_id_hash"]) == 64
    server = simulator.create_server("Globex MDM", org_id=org["org_id"])
    account = simulator.apple(server).get("/account").json()
    assert account["org_name"] == "Globex" and account["org_version"] == "v1"
    assert account["admin_id"] == "ade-admin@globex.example"
    assert account["org_id"] == org["org_id"]


def test_the_simulator_object_and_the_api_share_state(
    simulator: RunningSimulator, server: SimServer
) -> None:
    simulator.sim.set_terms_pending(server.org_id)
    assert simulator.session_response(server).text == '"T_C_NOT_SIGNED"'
    assert simulator.admin.state()["orgs"][0]["terms_pending"] is True
