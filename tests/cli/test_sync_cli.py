"""``adesync sync``, ``devices list`` and ``profiles ...`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adesync.store.database import Database
from tests.cli_runner import invoke
from tests.conftest import Home
from tests.sim_fixtures import RunningSimulator, sim_keypair, simulator
from tests.sync.helpers import insert_token

__all__ = ["sim_keypair", "simulator"]

SYNC_KEYS = {
    "token",
    "outcome",
    "kind",
    "pages",
    "added",
    "modified",
    "deleted",
    "unchanged",
    "error_code",
    "next_allowed_at",
}


@pytest.fixture
async def token(home: Home, simulator: RunningSimulator) -> str:
    server = simulator.create_server("CLI", devices=30)
    db = Database(home.db_url)
    try:
        await insert_token(
            db,
            home.box,
            "cli",
            lease_owner=None,
            credentials=server.credentials,
            dep_url=simulator.base_url,
        )
    finally:
        await db.dispose()
    return "cli"


def test_sync_json_reports_each_token_and_lists_devices(
    token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, "sync", token, "--json")
    assert result.code == 0, result.err
    reports = json.loads(result.out)
    assert set(reports[0]) >= SYNC_KEYS
    assert (reports[0]["outcome"], reports[0]["kind"], reports[0]["added"]) == ("ok", "fetch", 30)
    again = json.loads(invoke(capsys, "sync", token, "--json").out)
    assert again[0]["outcome"] == "skipped"
    assert again[0]["next_allowed_at"].endswith("Z")
    listed = invoke(capsys, "devices", "list", "--token", token, "--json")
    devices = json.loads(listed.out)
    assert len(devices) == 30
    assert {"serial_number", "token", "deleted", "last_op_type", "enrollment_state"} <= set(
        devices[0]
    )
    assert len(json.loads(invoke(capsys, "devices", "list", "--json", "--limit", "7").out)) == 7


def test_sync_without_a_name_or_with_an_unknown_one_is_one_clear_error(
    token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, "sync")
    assert result.code != 0 and "--all" in result.err and result.out == ""
    result = invoke(capsys, "sync", "nope", "--json")
    assert result.code != 0 and "no token named nope" in result.err
    assert invoke(capsys, "devices", "list", "--token", "nope").code != 0
    result = invoke(capsys, "devices", "list", "--profile-status", "assgned")
    assert result.code == 1 and result.out == ""
    assert "--profile-status 'assgned' is not one of empty, assigned, pushed, removed." in (
        " ".join(result.err.split())
    )


def test_a_token_error_exits_non_zero_without_a_traceback(
    token: str, simulator: RunningSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    server_uuid = simulator.admin.state()["servers"][0]["server_uuid"]
    simulator.admin.revoke(server_uuid)
    result = invoke(capsys, "sync", "--all", "--json")
    assert result.code == 1
    assert json.loads(result.out)[0]["error_code"] == "token_rejected"
    assert "Traceback" not in result.err


def test_profiles_define_default_list_assign(
    token: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke(capsys, "sync", token, "--json").code == 0
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"profile_name": "Staff", "url": "https://mdm.example.com/e"}))
    result = invoke(
        capsys, "profiles", "define", "--token", token, "--file", str(profile), "--default"
    )
    assert result.code == 0, result.err
    assert "30 device(s)" in result.out
    listed = json.loads(invoke(capsys, "profiles", "list", "--json").out)
    assert listed[0]["default"] is True
    uuid = listed[0]["profile_uuid"]
    devices = json.loads(invoke(capsys, "devices", "list", "--json").out)
    assert {d["profile_status"] for d in devices} == {"assigned"}
    serials = tmp_path / "serials.txt"
    serials.write_text("\n".join(d["serial_number"] for d in devices[:3]))
    result = invoke(
        capsys, "profiles", "assign", "--token", token, "--profile", uuid, "--serials", str(serials)
    )
    assert result.code == 0 and "3 of 3" in result.out
    result = invoke(capsys, "profiles", "set-default", "--token", token, "--profile", uuid)
    assert result.code == 0, result.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"profile_name": "x" * 200, "url": "https://a.example"}), "profile_name"),
        (json.dumps({"profile_name": "ok"}), "CONFIG_URL_REQUIRED"),
    ],
)
def test_a_bad_profile_file_is_refused_before_apple_and_nothing_changes(
    token: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    profile = tmp_path / "bad.json"
    profile.write_text(content)
    result = invoke(capsys, "profiles", "define", "--token", token, "--file", str(profile))
    assert result.code != 0
    assert message in result.err and result.err.count("\n") == 1
    assert json.loads(invoke(capsys, "profiles", "list", "--json").out) == []
