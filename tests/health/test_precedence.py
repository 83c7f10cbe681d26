"""One cause per fault: the precedence table, its documentation, and what evaluating does with
hidden findings (not stored, not counted, listed as suppressed) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

from sqlalchemy import select

from adesync.health import RULES, Finding, Severity, State, evaluate
from adesync.health.help import findings_markdown
from adesync.health.precedence import HIDES, hidden_by, one_cause_per_fault
from adesync.health.report import build_report
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_health import findings
from adesync.store.types import utcnow
from tests.health.factory import NOW, add_assignments, add_devices, add_token, beat
from tests.health.test_scenarios import _moved_success
from tests.health.world import World

SYMPTOMS = {"sync_stale", "devices_without_profile", "assignment_failed", "pushed_not_enrolled"}


def finding(code: str, token_id: int | None = 1) -> Finding:
    return Finding(code, Severity.ERROR, token_id)


def test_the_table_is_the_issues_table() -> None:
    expected = {
        "token_expired": {"token_rejected"},
        "token_rejected": SYMPTOMS,
        "access_denied": SYMPTOMS,
        "terms_not_accepted": SYMPTOMS,
    }
    assert expected == HIDES


def test_every_code_in_the_table_is_a_rule_and_no_code_hides_itself() -> None:
    codes = {rule.code for rule in RULES}
    for cause, hidden in HIDES.items():
        assert cause in codes
        assert hidden <= codes
        assert cause not in hidden
    # No cycle: following "hidden by" from any code ends.
    for code in codes:
        chain = [code]
        while (nxt := next((c for c, h in HIDES.items() if chain[-1] in h), None)) is not None:
            assert nxt not in chain, chain
            chain.append(nxt)


def test_the_documented_table_is_the_code_table() -> None:
    section = findings_markdown().split("## One cause per fault", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (.+) \|$", section, re.MULTILINE)
    documented = {cause: set(re.findall(r"`([a-z_]+)`", hidden)) for cause, hidden in rows}
    assert documented == HIDES


def test_expired_hides_rejected() -> None:
    shown, hidden = one_cause_per_fault([finding("token_expired"), finding("token_rejected")])
    assert [f.code for f in shown] == ["token_expired"]
    assert [(s.finding.code, s.hidden_by) for s in hidden] == [("token_rejected", "token_expired")]


def test_each_refusal_hides_the_symptoms_but_not_other_causes() -> None:
    for cause in ("token_rejected", "access_denied", "terms_not_accepted"):
        found = [finding(cause), *(finding(code) for code in sorted(SYMPTOMS))]
        found.append(finding("no_default_profile"))
        shown, hidden = one_cause_per_fault(found)
        assert [f.code for f in shown] == [cause, "no_default_profile"]
        assert {(s.finding.code, s.hidden_by) for s in hidden} == {
            (code, cause) for code in SYMPTOMS
        }


def test_a_hidden_cause_hands_its_symptoms_to_the_cause_shown() -> None:
    shown, hidden = one_cause_per_fault(
        [finding("token_rejected"), finding("sync_stale"), finding("token_expired")]
    )
    assert [f.code for f in shown] == ["token_expired"]
    assert {(s.finding.code, s.hidden_by) for s in hidden} == {
        ("token_rejected", "token_expired"),
        ("sync_stale", "token_expired"),
    }
    assert hidden_by("sync_stale", ["sync_stale", "token_rejected", "token_expired"]) == (
        "token_expired"
    )


def test_precedence_is_per_token_and_never_about_the_installation() -> None:
    found = [
        finding("token_expired", 1),
        finding("token_rejected", 2),
        finding("sync_stale", 3),
        finding("scheduler_down", None),
    ]
    shown, hidden = one_cause_per_fault(found)
    assert shown == found
    assert hidden == []


async def test_an_expired_token_apple_rejects_is_only_expired(db: Database) -> None:
    token_id = await add_token(
        db,
        access_token_expiry=NOW - timedelta(days=2),
        token_rejected=True,
        last_error_code="token_rejected",
        last_error_at=NOW - timedelta(hours=1),
        consecutive_failures=3,
        last_successful_sync_at=NOW - timedelta(days=4),
    )
    await beat(db)
    health = await evaluate(db, now=NOW)
    (token,) = health.tokens
    assert [s.finding.code for s in token.findings] == ["token_expired"]
    assert (token.state, token.state_reason) == (State.ERROR, "token_expired")
    assert {(s.finding.code, s.hidden_by) for s in token.suppressed} == {
        ("token_rejected", "token_expired"),
        ("sync_stale", "token_expired"),
    }
    async with db.read() as session:
        stored = (await session.execute(select(findings.c.code))).scalars().all()
    assert stored == ["token_expired"]
    report = build_report(health, "en")
    assert [f["code"] for f in report["findings"]] == ["token_expired"]
    assert report["suppressed"] == [
        {"code": "sync_stale", "token": "school", "hidden_by": "token_expired"},
        {"code": "token_rejected", "token": "school", "hidden_by": "token_expired"},
    ]
    assert report["alert"]["affected_tokens"][0]["state_reason"] == "token_expired"
    assert token_id


async def test_hidden_warnings_do_not_count_toward_state_or_status(db: Database) -> None:
    """A token refused for terms whose devices also wait for profiles is in error for the
    terms alone; once the terms clear, the devices' warning shows again."""
    token_id = await add_token(
        db,
        terms_not_accepted=True,
        last_error_code="terms_not_accepted",
        consecutive_failures=1,
        last_successful_sync_at=NOW - timedelta(hours=30),
    )
    serials = await add_devices(db, token_id, 2, prefix="NA")
    await add_assignments(db, token_id, serials, "NOT_ACCESSIBLE")
    await beat(db)
    (token,) = (await evaluate(db, now=NOW)).tokens
    assert [s.finding.code for s in token.findings] == ["terms_not_accepted"]
    assert {s.finding.code for s in token.suppressed} == {"sync_stale", "assignment_failed"}

    async with db.write() as session:
        await session.execute(
            tokens.update().values(
                terms_not_accepted=False,
                consecutive_failures=0,
                last_successful_sync_at=NOW,
            )
        )
    (token,) = (await evaluate(db, token_id=token_id, now=NOW)).tokens
    assert [s.finding.code for s in token.findings] == ["assignment_failed"]
    assert (token.state, token.state_reason, token.suppressed) == (
        State.WARNING,
        "assignment_failed",
        (),
    )


# -- through the simulator: the admin's view -----------------------------------------------------


def _expire_everywhere(world: World, server_uuid: str) -> None:
    """The token's year is over: Apple refuses it and adesync's stored expiry is past."""
    with world.sim.lock:
        world.sim.server(server_uuid).token.expiry = int(time.time()) - 3600
    world.sim.expire_sessions()

    async def expire(db: Database) -> None:
        async with db.write() as session:
            await session.execute(
                tokens.update().values(access_token_expiry=utcnow() - timedelta(hours=1))
            )

    world.db(expire)


def test_an_expired_token_that_apple_rejects_shows_only_token_expired(world: World) -> None:
    server_uuid = world.healthy_token()
    _expire_everywhere(world, server_uuid)
    assert world.sync()["error_code"] == "token_rejected"
    status, report = world.diagnose()
    assert status == 2
    assert [(f["token"], f["code"]) for f in report["findings"]] == [("lab", "token_expired")]
    assert report["suppressed"] == [
        {"code": "token_rejected", "token": "lab", "hidden_by": "token_expired"}
    ]
    assert report["alert"]["affected_tokens"][0]["state_reason"] == "token_expired"
    (listed,) = json.loads(world.cli("tokens", "list", "--json").out)
    assert (listed["state"], listed["state_reason"]) == ("error", "token_expired")
    world.renew("lab")
    assert world.sync()["outcome"] == "ok"
    world.expect_healthy()


def test_a_rejected_token_that_has_not_synced_for_days_shows_only_token_rejected(
    world: World,
) -> None:
    server_uuid = world.healthy_token()
    world.sim.revoke_token(server_uuid)
    world.sim.expire_sessions()
    assert world.sync()["error_code"] == "token_rejected"
    world.db(_moved_success(80))
    status, report = world.diagnose()
    assert status == 2
    assert [f["code"] for f in report["findings"]] == ["token_rejected"]
    assert report["suppressed"] == [
        {"code": "sync_stale", "token": "lab", "hidden_by": "token_rejected"}
    ]
    (listed,) = json.loads(world.cli("tokens", "list", "--json").out)
    assert listed["state_reason"] == "token_rejected"
