"""Scenario files: the shipped example, a JSON scenario writing a token file, and bad files."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from adesync.simulator import ScenarioError, Simulator, apply_scenario, load_scenario
from adesync.simulator.serve import run_in_thread
from tests.sim_fixtures import SimAdmin, SimKeyPair, signed_session_headers

EXAMPLE = Path(__file__).parents[2] / "examples" / "simulator-scenario.toml"


def test_the_shipped_example_builds_its_world_and_serves_it() -> None:
    data = load_scenario(EXAMPLE)
    sim = Simulator(devices=data["devices"], seed=data["seed"])
    made = apply_scenario(sim, data, EXAMPLE.parent)
    assert [m["name"] for m in made] == [
        "Acme Main MDM", "Acme Lab MDM", "Springfield iPads", "Revoked MDM", "Deleted MDM",
    ]  # fmt: skip
    base_url, stop = run_in_thread(sim)
    admin = SimAdmin(base_url)
    try:
        state = admin.state()
        servers = {s["server_name"]: s for s in state["servers"]}
        assert servers["Acme Main MDM"]["device_count"] == 5003
        assert servers["Acme Main MDM"]["event_count"] == 3
        assert servers["Revoked MDM"]["token"]["state"] == "revoked"
        assert servers["Deleted MDM"]["deleted"] is True
        assert state["settings"]["session_rotate_every"] == 50
        orgs = {o["name"]: o for o in state["orgs"]}
        assert orgs["Springfield School District"]["terms_pending"] is True
        assert orgs["Springfield School District"]["org_type"] == "edu"

        def session(name: str) -> httpx.Response:
            credentials = admin.credentials(servers[name]["server_uuid"])
            headers = signed_session_headers(base_url, credentials)
            return httpx.get(f"{base_url}/session", headers={**headers, "User-Agent": "t/1"})

        assert (session("Acme Main MDM").status_code) == 429  # the scripted first answer
        assert session("Acme Main MDM").status_code == 200
        assert session("Acme Lab MDM").status_code == 503  # the server's throttle switch
        assert session("Springfield iPads").text == '"T_C_NOT_SIGNED"'
        assert session("Revoked MDM").text == '"token_rejected"'
        assert session("Deleted MDM").text == '"ACCESS_DENIED"'
    finally:
        admin.close()
        stop()


def test_the_same_seed_gives_the_same_world() -> None:
    data = load_scenario(EXAMPLE)
    worlds = []
    for _ in range(2):
        sim = Simulator(devices=data["devices"], seed=data["seed"], epoch=1_700_000_000)
        apply_scenario(sim, data, EXAMPLE.parent)
        first = sim.describe()["servers"][0]["server_uuid"]
        worlds.append((first, sim.credentials(first), sim.devices(first, 0, 5)))
    assert worlds[0] == worlds[1]


def test_a_json_scenario_writes_token_files(tmp_path: Path, sim_keypair: SimKeyPair) -> None:
    (tmp_path / "cert.pem").write_text(sim_keypair.certificate_pem)
    scenario = {
        "servers": [{"name": "One", "certificate": "cert.pem", "p7m_out": "out/one.p7m"}],
        "get_session_responses": [{"count": 1, "response": "forbidden_t_c_not_signed"}],
    }
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    sim = Simulator(devices=2)
    made = apply_scenario(sim, load_scenario(path), tmp_path)
    assert made[0]["p7m"] == str(tmp_path / "out" / "one.p7m")
    assert (tmp_path / "out" / "one.p7m").read_bytes().startswith(b"Content-Type: application/")
    assert sim.faults.describe()["scripts"] == {
        "session": [{"count": 1, "response": "forbidden_t_c_not_signed"}]
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("seed = ", "is not valid"),
        ("colour = 1", "unknown keys: colour"),
        ("[[servers]]\nname = 'x'\nflavour = 2", "server 1 has unknown keys: flavour"),
        ("devices = 'many'", "devices must be a whole number"),
    ],
)
def test_bad_scenario_files_are_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert message in error.value.message


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ({"servers": [{"name": "x", "certificate": "missing.pem"}]}, "Scenario server 1: cannot"),
        ({"faults": {"scripts": {"session": [{"response": "teapot"}]}}}, "Scenario faults:"),
        ({"settings": {"session_idle_seconds": "long"}}, "Scenario settings:"),
        ({"orgs": [{"name": "A", "org_type": "school"}]}, "Scenario org 1:"),
        ({"servers": [{"name": "x", "throttle_serials": {"first": "two"}}]}, "Scenario server 1:"),
    ],
)
def test_scenarios_that_cannot_be_applied(
    tmp_path: Path, scenario: dict[str, object], message: str
) -> None:
    with pytest.raises(ScenarioError) as error:
        apply_scenario(Simulator(devices=1), scenario, tmp_path)
    assert error.value.message.startswith(message) and error.value.message.endswith(".")


def test_a_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario(tmp_path / "nope.json")
    assert error.value.message.startswith("Cannot read the scenario file")


def test_the_documented_scenario_applies(tmp_path: Path, sim_keypair: SimKeyPair) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "simulator.md").read_text()
    block = docs.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "scenario.toml").write_text(block)
    (tmp_path / "acme.pem").write_text(sim_keypair.certificate_pem)
    data = load_scenario(tmp_path / "scenario.toml")
    sim = Simulator(devices=data["devices"], seed=data["seed"])
    made = apply_scenario(sim, data, tmp_path)
    assert made[0]["p7m"] == str(tmp_path / "acme.p7m") and (tmp_path / "acme.p7m").exists()
    assert sim.describe()["servers"][1]["token"]["state"] == "revoked"
