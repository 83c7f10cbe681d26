"""``adesync diagnose --stored``: the JSON document, the Rich report, exit codes 0/1/2/3,
--token, --lang, on facts stored directly (the live check with Apple: test_diagnose_live.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from adesync.store.database import Database
from adesync.store.tables_health import notify_outbox
from adesync.store.types import utcnow
from tests.cli_runner import invoke
from tests.conftest import Home
from tests.health.factory import add_token, beat


async def seed(home: Home, **tokens: dict[str, Any]) -> None:
    """Tokens healthy at the real time unless overridden, and a live scheduler."""
    now = utcnow()
    db = Database(home.db_url)
    try:
        for name, overrides in tokens.items():
            values = {
                "access_token_expiry": now + timedelta(days=200),
                "last_successful_sync_at": now - timedelta(minutes=5),
                "token_added_at": now - timedelta(days=10),
                **overrides,
            }
            await add_token(db, name, **values)
        await beat(db, now)
    finally:
        await db.dispose()


def diagnose(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    result = invoke(capsys, "diagnose", "--stored", "--json", *args)
    assert result.err == ""
    return result.code, json.loads(result.out)


async def test_nothing_held_is_healthy(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = diagnose(capsys)
    assert code == 0
    assert report["status"] == "healthy"
    assert (report["alert"], report["findings"], report["tokens"]) == (None, [], [])


async def test_a_healthy_token_exits_zero(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    await seed(home, lab={})
    code, report = diagnose(capsys)
    assert (code, report["status"], report["findings"]) == (0, "healthy", [])
    assert report["tokens"][0]["state"] == "healthy"


async def test_a_warning_exits_one(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    await seed(home, lab={"access_token_expiry": utcnow() + timedelta(days=9, hours=1)})
    code, report = diagnose(capsys)
    assert (code, report["status"], report["alert"]) == (1, "warning", None)
    (finding,) = report["findings"]
    assert finding["code"] == "token_expiring"
    assert finding["title"] == "Token expires in 9 days"
    assert finding["doc_url"] == "/help/findings#token_expiring"
    assert finding["token"] == "lab"


async def test_an_error_exits_two_with_the_alert(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(
        home,
        bad={"access_token_expiry": utcnow() - timedelta(days=1), "org_name": "Bad School"},
        warn={"default_profile_uuid": None},
        good={},
    )
    code, report = diagnose(capsys)
    assert (code, report["status"]) == (2, "error")
    alert = report["alert"]
    assert alert["title"] == "One or more ADE tokens are in an error state"
    assert len(alert["symptoms"]) == 3
    assert alert["affected_tokens"] == [
        {"name": "bad", "org_name": "Bad School", "state_reason": "token_expired"}
    ]
    # Grouped by token, worst first; every field of the spec is there.
    assert [(f["token"], f["code"]) for f in report["findings"]] == [
        ("bad", "token_expired"),
        ("warn", "no_default_profile"),
    ]
    keys = {"code", "severity", "token", "title", "detail", "remediation", "doc_url"}
    assert keys | {"count", "samples"} <= report["findings"][0].keys()
    assert [t["name"] for t in report["tokens"]] == ["bad", "warn", "good"]


async def test_token_option_covers_one_token(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(home, bad={"terms_not_accepted": True}, good={})
    code, report = diagnose(capsys, "--token", "good")
    assert (code, report["status"], report["alert"], report["findings"]) == (
        0,
        "healthy",
        None,
        [],
    )
    code, report = diagnose(capsys, "--token", "bad")
    assert code == 2
    assert [f["code"] for f in report["findings"]] == ["terms_not_accepted"]


async def test_rich_report_in_both_languages(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(home, lab={"terms_not_accepted": True, "org_name": "Lab School"})
    result = invoke(capsys, "diagnose", "--stored")
    assert result.code == 2
    assert "One or more ADE tokens are in an error state" in result.out
    assert "Apple's new terms and conditions are not accepted" in result.out
    assert "1. Ask an Administrator of Apple School Manager" in result.out
    assert "/help/findings#terms_not_accepted" in result.out
    result = invoke(capsys, "diagnose", "--stored", "--lang", "zh-CN")
    assert result.code == 2
    assert "一个或多个 ADE 令牌处于错误状态" in result.out
    assert "尚未接受 Apple 的新条款与条件" in result.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--token", "nope"), "There is no token named 'nope'"),
        (("--lang", "fr"), "--lang must be one of en, zh-CN"),
    ],
)
async def test_bad_input_exits_three_with_one_sentence(
    home: Home, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    result = invoke(capsys, "diagnose", *args)
    assert result.code == 3
    assert message in result.err
    assert result.out == ""
    assert len(result.err.strip().splitlines()) == 1


def test_an_uninitialised_installation_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(capsys, "diagnose", "--json")
    assert result.code == 3
    assert "adesync init" in result.err


async def test_json_log_lines_for_transitions(home: Home) -> None:
    await seed(home, lab={"terms_not_accepted": True})
    env = {**os.environ, "ADESYNC_LOG_JSON": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "adesync.cli", "diagnose", "--stored", "--json"],
        env=env,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 2
    json.loads(done.stdout)  # stdout stays one JSON document
    lines = [json.loads(line) for line in done.stderr.decode().splitlines()]
    (event,) = [line for line in lines if line.get("event") == "health.transition"]
    assert (event["token"], event["new_state"], event["codes"]) == (
        "lab",
        "error",
        ["terms_not_accepted"],
    )


async def test_transitions_are_queued_without_loading_the_enrollment_package(
    home: Home,
) -> None:
    """diagnose --stored wires only what evaluating needs: the transition still reaches notify's
    outbox, and the enrollment package (with httpx) stays unloaded when there are no MDM
    events or failed probes for its rules to look at."""
    await seed(home, lab={"terms_not_accepted": True})
    script = (
        "import sys\n"
        "from adesync.cli import run_cli\n"
        "code = run_cli(['diagnose', '--stored', '--json'])\n"
        "loaded = sorted(m for m in ('adesync.enrollment', 'httpx') if m in sys.modules)\n"
        "sys.stderr.write(repr(loaded))\n"
        "sys.exit(code)\n"
    )
    env = {
        **os.environ,
        "ADESYNC_WEBHOOK_URL": "https://hooks.example/adesync",
        "ADESYNC_WEBHOOK_SECRET": "wired",
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, check=False)
    assert done.returncode == 2, done.stderr.decode()
    assert done.stderr.decode().splitlines()[-1] == "[]"
    db = Database(home.db_url)
    try:
        async with db.read() as session:
            queued = (await session.execute(select(notify_outbox.c.event))).scalars().all()
    finally:
        await db.dispose()
    assert queued == ["token.state_changed"]


async def test_a_token_waiting_for_its_first_p7m(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(home, pending={"oauth_credentials": None})
    result = invoke(capsys, "diagnose", "--token", "pending")
    assert result.code == 3
    assert "waiting for its first server token" in result.err


@pytest.mark.parametrize("mode", [(), ("--stored",)], ids=["live", "stored"])
async def test_a_wrong_secret_key_is_unknown(
    home: Home,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mode: tuple[str, ...],
) -> None:
    await seed(home, lab={})
    monkeypatch.setenv("ADESYNC_SECRET_KEY", "YW5vdGhlci1rZXktZm9yLWFkZXN5bmMtdGVzdHMhISE=")
    result = invoke(capsys, "diagnose", "--json", *mode)
    assert (result.code, result.out) == (3, "")
    assert "The secret key does not match this database" in result.err
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("mode", [(), ("--stored",)], ids=["live", "stored"])
async def test_a_database_that_fails_during_the_check_is_unknown(
    home: Home, capsys: pytest.CaptureFixture[str], mode: tuple[str, ...]
) -> None:
    """Not exit 1 (a monitoring system would read a warning): 3, one sentence."""
    await seed(home, pending={"oauth_credentials": None})  # nothing to ask Apple about
    await _rename_findings(home, "findings", "findings_gone")
    try:
        result = invoke(capsys, "diagnose", "--json", *mode)
    finally:
        await _rename_findings(home, "findings_gone", "findings")
    assert (result.code, result.out) == (3, "")
    assert result.err.startswith("error: adesync could not check: the database at ")
    assert "findings" in result.err
    assert len(result.err.strip().splitlines()) == 1


async def _rename_findings(home: Home, old: str, new: str) -> None:
    db = Database(home.db_url)
    try:
        async with db.write() as session:
            await session.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    finally:
        await db.dispose()
