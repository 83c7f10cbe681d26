"""``adesync runs list`` as a user runs it, against the simulator, on both backends."""

from __future__ import annotations

import json

import pytest

from adesync.store.database import Database
from tests.cli_runner import invoke
from tests.conftest import Home
from tests.sim_fixtures import RunningSimulator, sim_keypair, simulator
from tests.sync.helpers import insert_token

__all__ = ["sim_keypair", "simulator"]

RUN_KEYS = {
    "token",
    "started_at",
    "finished_at",
    "kind",
    "trigger",
    "outcome",
    "error_code",
    "pages",
    "added",
    "modified",
    "deleted",
    "unchanged",
    "assigned",
}
COUNTS = ("pages", "added", "modified", "deleted", "unchanged", "assigned")


@pytest.fixture
async def tokens(home: Home, simulator: RunningSimulator) -> tuple[str, str]:
    db = Database(home.db_url)
    try:
        for name, devices in (("north", 30), ("south", 4)):
            server = simulator.create_server(name.title(), devices=devices)
            await insert_token(
                db,
                home.box,
                name,
                lease_owner=None,
                credentials=server.credentials,
                dep_url=simulator.base_url,
            )
    finally:
        await db.dispose()
    return "north", "south"


def sync_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    result = invoke(capsys, "sync", *args, "--force", "--json")
    assert result.code == 0, result.err
    (report,) = json.loads(result.out)
    return dict(report)


def runs_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    result = invoke(capsys, "runs", "list", *args, "--json")
    assert result.code == 0, result.err
    assert result.err == ""
    runs: list[dict[str, object]] = json.loads(result.out)
    return runs


def test_runs_list_shows_the_history_newest_first_with_the_counts_sync_printed(
    tokens: tuple[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    north, south = tokens
    first = sync_json(capsys, north)
    refetch = sync_json(capsys, north, "--full")
    other = sync_json(capsys, south)
    assert (first["added"], first["unchanged"]) == (30, 0)
    assert (refetch["added"], refetch["modified"], refetch["unchanged"]) == (0, 0, 30)

    runs = runs_json(capsys)
    assert [run["token"] for run in runs] == [south, north, north]
    for run, report in zip(runs, (other, refetch, first), strict=True):
        assert set(run) >= RUN_KEYS
        assert (run["outcome"], run["kind"], run["trigger"]) == ("ok", "fetch", "manual")
        assert {c: run[c] for c in COUNTS} == {c: report[c] for c in COUNTS}
        assert str(run["started_at"]).endswith("Z") and str(run["finished_at"]).endswith("Z")

    assert [run["unchanged"] for run in runs_json(capsys, "--token", north)] == [30, 0]
    assert runs_json(capsys, "--limit", "1") == runs[:1]
    assert runs_json(capsys, "--token", north, "--limit", "1") == runs[1:2]

    monkeypatch.setenv("COLUMNS", "80")  # the table fits an 80-column terminal
    table = invoke(capsys, "runs", "list", "--token", north)
    assert table.code == 0, table.err
    assert "same" in table.out and south not in table.out
    assert all(len(line) <= 80 for line in table.out.splitlines())
    rows = [line.split() for line in table.out.splitlines() if north in line]
    # started (date, time), token, kind, outcome, added, changed, gone, same
    assert [row[2:] for row in rows] == [
        [north, "fetch", "ok", "0", "0", "0", "30"],
        [north, "fetch", "ok", "30", "0", "0", "0"],
    ]


def test_runs_list_refuses_an_unknown_token_in_one_sentence(
    tokens: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, "runs", "list", "--token", "nope", "--json")
    assert (result.code, result.out) == (1, "")
    assert result.err.strip() == (
        "error: There is no token called nope; `adesync tokens list --all` lists all."
    )
    assert invoke(capsys, "runs", "list", "--limit", "0").code == 2  # a usage error


def test_runs_list_without_runs_says_so_and_skipped_syncs_are_not_runs(
    tokens: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    north, _ = tokens
    assert runs_json(capsys, "--token", north) == []
    assert "No sync runs yet." in invoke(capsys, "runs", "list").out
    assert invoke(capsys, "sync", north, "--json").code == 0
    skipped = json.loads(invoke(capsys, "sync", north, "--json").out)
    assert skipped[0]["outcome"] == "skipped"
    assert len(runs_json(capsys, "--token", north)) == 1
