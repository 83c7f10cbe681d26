"""``adesync diagnose`` asks Apple now: each token is checked against the simulator over
loopback HTTP (its admin API changes what "Apple" says), with no sync in between; ``--stored``
never calls Apple; a token inside Apple's ``Retry-After`` is not called; an Apple that cannot
be reached is ``apple_unavailable``; a check never uses the manual-sync allowance."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from adesync.config import load_settings
from adesync.services.diagnose import LiveOutcome, check_tokens_live
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_sync import sync_runs
from adesync.store.types import utcnow
from adesync.sync.service import SyncService
from tests.health.world import World
from tests.sim_fixtures import SimAdmin


def calls(world: World) -> int:
    """Every call the simulator answered on Apple's paths so far, counted over its admin API."""
    admin = SimAdmin(world.base_url)
    try:
        return sum(admin.state()["requests"].values())
    finally:
        admin.close()


def set_terms_pending(world: World, server_uuid: str, pending: bool) -> None:
    admin = SimAdmin(world.base_url)
    try:
        admin.set_terms_pending(world.sim.server(server_uuid).org.org_id, pending)
    finally:
        admin.close()


def token_columns(world: World, name: str = "lab") -> Any:
    async def read(db: Database) -> Any:
        async with db.read() as session:
            row = (await session.execute(select(tokens).where(tokens.c.name == name))).one()
            runs = (await session.execute(select(func.count()).select_from(sync_runs))).scalar()
        return row, runs

    return world.db(read)


def set_columns(world: World, name: str = "lab", **values: Any) -> None:
    async def write(db: Database) -> None:
        async with db.write() as session:
            await session.execute(update(tokens).where(tokens.c.name == name).values(**values))

    world.db(write)


def cli_json(world: World, *args: str) -> Any:
    return json.loads(world.cli(*args).out)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_terms_pending_at_apple_are_found_and_cleared_without_a_sync(world: World) -> None:
    server_uuid = world.healthy_token()
    before, runs_before = token_columns(world)
    assert before.last_manual_sync_at is not None  # the sync of healthy_token() used it
    set_terms_pending(world, server_uuid, True)

    status, report = world.diagnose()
    assert status == 2
    assert [(f["token"], f["code"]) for f in report["findings"]] == [("lab", "terms_not_accepted")]
    assert report["alert"]["affected_tokens"][0]["state_reason"] == "terms_not_accepted"
    (listed,) = cli_json(world, "tokens", "list", "--json")
    assert (listed["state"], listed["state_reason"]) == ("error", "terms_not_accepted")

    set_terms_pending(world, server_uuid, False)
    status, report = world.diagnose()
    assert (status, report["status"], report["findings"], report["alert"]) == (
        0,
        "healthy",
        [],
        None,
    )
    after, runs_after = token_columns(world)
    # No sync ran and no check used the manual-sync allowance: the check that found the fix
    # gave the allowance back whole and made the next sync due now.
    assert runs_after == runs_before
    assert after.last_manual_sync_at is None
    assert after.last_successful_sync_at == before.last_successful_sync_at
    assert cli_json(world, "sync", "lab", "--json")[0]["outcome"] == "ok"


def test_a_manual_sync_right_after_diagnose_is_not_throttled(world: World) -> None:
    world.healthy_token()
    set_columns(world, last_manual_sync_at=None)
    assert world.diagnose()[0] == 0
    result = cli_json(world, "sync", "lab", "--json")
    assert result[0]["outcome"] == "ok", result


def test_stored_does_not_call_apple(world: World) -> None:
    server_uuid = world.healthy_token()
    set_terms_pending(world, server_uuid, True)
    answered = calls(world)
    status, report = world.diagnose("--stored")
    assert (status, report["findings"]) == (0, [])  # what is stored: nothing known yet
    assert calls(world) == answered
    status, _ = world.diagnose()
    assert status == 2
    assert calls(world) > answered


def test_a_token_inside_apples_retry_after_is_not_called(world: World) -> None:
    world.healthy_token()
    world.healthy_token("other")
    world.sim.set_faults(throttle={"status": 429, "retry_after": 3600})
    assert world.sync()["error_code"] == "apple_throttled"
    world.sim.clear_faults()
    throttled, _ = token_columns(world)
    assert throttled.throttled_until > utcnow()
    answered = calls(world)
    status, report = world.diagnose("--token", "lab")
    # Not called: its stored state (waiting, an info finding) is reported.
    assert calls(world) == answered
    assert (status, [f["code"] for f in report["findings"]]) == (0, ["apple_throttled"])
    status, report = world.diagnose()
    assert calls(world) > answered  # the other token was checked
    assert (status, [(f["token"], f["code"]) for f in report["findings"]]) == (
        0,
        [("lab", "apple_throttled")],
    )
    row, _ = token_columns(world)
    assert row.throttled_until == throttled.throttled_until


def test_an_unreachable_apple_is_apple_unavailable(world: World) -> None:
    world.healthy_token()
    set_columns(world, dep_url=f"http://127.0.0.1:{closed_port()}")
    status, report = world.diagnose()
    assert status == 1
    (finding,) = report["findings"]
    assert (finding["code"], finding["severity"], finding["token"]) == (
        "apple_unavailable",
        "warning",
        "lab",
    )
    row, _ = token_columns(world)
    assert (row.last_error_code, row.last_error_status) == ("apple_unavailable", None)


def test_a_check_without_an_answer_in_time_records_apple_unavailable(world: World) -> None:
    """The per-token limit (10 s in the CLI; shorter here) on a simulator that answers late."""
    world.healthy_token()
    world.healthy_token("slow")
    world.sim.set_faults(world.servers["slow"], delay_ms=3000)
    world.sim.expire_sessions()

    async def check(db: Database) -> Any:
        service = SyncService(db, world.home.box, load_settings())
        return await check_tokens_live(
            db, service.check, service.record_unreachable, seconds_per_token=1.0
        )

    results = {r.name: (r.outcome, r.error_code) for r in world.db(check)}
    assert results == {
        "lab": (LiveOutcome.OK, None),
        "slow": (LiveOutcome.UNREACHABLE, "apple_unavailable"),
    }
    status, report = world.diagnose("--stored")
    assert (status, [(f["token"], f["code"]) for f in report["findings"]]) == (
        1,
        [("slow", "apple_unavailable")],
    )
    # Apple answers in time again: the next diagnose clears it.
    world.sim.clear_faults(world.servers["slow"])
    world.expect_healthy("slow")


def test_token_option_checks_only_that_token(world: World) -> None:
    lab = world.healthy_token()
    world.healthy_token("other")
    set_terms_pending(world, lab, True)  # one organisation: both servers are refused
    status, report = world.diagnose("--token", "other")
    assert status == 2
    assert {f["token"] for f in report["findings"]} == {"other"}
    row, _ = token_columns(world, "lab")
    assert row.terms_not_accepted is False  # lab was not asked
    set_terms_pending(world, lab, False)
    assert world.diagnose()[0] == 0


def test_an_expiry_passed_here_stands_after_apple_accepts_the_check(world: World) -> None:
    """A successful check clears Apple's flags, not the token's own expiry."""
    world.healthy_token()
    set_columns(world, access_token_expiry=utcnow() - timedelta(minutes=1))
    status, report = world.diagnose()
    assert status == 2
    assert [f["code"] for f in report["findings"]] == ["token_expired"]
