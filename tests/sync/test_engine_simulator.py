"""The sync state machine against the simulator over loopback HTTP, on both backends."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from adesync.config import load_settings
from adesync.services.profiles import ProfileService
from adesync.services.tokens import list_tokens
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_sync import assignments, sync_runs
from adesync.store.types import utcnow
from adesync.sync import hooks
from adesync.sync.clients import client_factory
from adesync.sync.service import SyncService
from tests.conftest import Home
from tests.sim_fixtures import RunningSimulator, SimServer, sim_keypair, simulator
from tests.sync.helpers import device_rows, insert_token

__all__ = ["sim_keypair", "simulator"]

PROFILE = {"profile_name": "Staff", "url": "https://mdm.example.com/enroll"}


@pytest.fixture
async def db(home: Home) -> Any:
    database = Database(home.db_url)
    yield database
    await database.dispose()


async def add(
    db: Database, home: Home, simulator: RunningSimulator, server: SimServer, name: str
) -> int:
    return await insert_token(
        db,
        home.box,
        name,
        lease_owner=None,
        credentials=server.credentials,
        dep_url=simulator.base_url,
    )


async def no_wait(_seconds: float) -> None:
    return None


def service(db: Database, home: Home) -> SyncService:
    """A sync service whose Apple client retries without pausing."""
    settings = load_settings()
    return SyncService(db, home.box, settings, make_client=client_factory(settings, sleep=no_wait))


async def live_serials(db: Database, token_id: int) -> set[str]:
    return {s for s, row in (await device_rows(db, token_id)).items() if not row.deleted}


def sim_serials(simulator: RunningSimulator, server: SimServer) -> set[str]:
    return set(simulator.admin.serials(server.uuid, 10_000))


async def test_full_fetch_then_incremental_sync_mirrors_the_simulator(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    server = simulator.create_server("Main", devices=25)
    other = simulator.create_server("Other", devices=3)
    token_id = await add(db, home, simulator, server, "main")
    sync = service(db, home)
    first = await sync.sync_now(token_id, force=True)
    assert (first.outcome, first.kind, first.added) == ("ok", "fetch", 25)
    assert await live_serials(db, token_id) == sim_serials(simulator, server)
    listed = {doc["name"]: doc for doc in await list_tokens(db)}
    assert listed["main"]["device_count"] == 25
    assert listed["main"]["last_successful_sync_at"] is not None

    serials = sorted(sim_serials(simulator, server))
    simulator.admin.add_devices(server.uuid, count=4)
    simulator.admin.modify_devices(server.uuid, [{"serial_number": serials[0], "color": "RED"}])
    simulator.admin.move_devices([serials[1]], other.uuid)
    second = await sync.sync_now(token_id, force=True)
    assert (second.outcome, second.kind) == ("ok", "sync")
    assert (second.added, second.modified, second.deleted) == (4, 1, 1)
    rows = await device_rows(db, token_id)
    assert rows[serials[0]].color == "RED"
    assert rows[serials[1]].deleted is True
    assert await live_serials(db, token_id) == sim_serials(simulator, server)

    # Nothing changed: a sync with no devices, and the cursor stays usable.
    third = await sync.sync_now(token_id, force=True)
    assert (third.outcome, third.added, third.modified, third.deleted) == ("ok", 0, 0, 0)


async def last_run_counts(db: Database, token_id: int) -> tuple[int, ...]:
    async with db.read() as session:
        row = (
            await session.execute(
                select(
                    sync_runs.c.added,
                    sync_runs.c.modified,
                    sync_runs.c.deleted,
                    sync_runs.c.unchanged,
                )
                .where(sync_runs.c.token_id == token_id)
                .order_by(sync_runs.c.id.desc())
                .limit(1)
            )
        ).one()
    return tuple(row)


async def test_a_refetch_counts_only_new_devices_as_added_and_only_changed_ones_as_modified(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    server = simulator.create_server("Main", devices=30)
    token_id = await add(db, home, simulator, server, "main")
    sync = service(db, home)
    first = await sync.sync_now(token_id, force=True)
    assert (first.kind, first.added, first.modified, first.unchanged) == ("fetch", 30, 0, 0)

    again = await sync.sync_now(token_id, full=True, force=True)
    assert (again.outcome, again.kind) == ("ok", "fetch")
    assert (again.added, again.modified, again.deleted, again.unchanged) == (0, 0, 0, 30)
    assert await last_run_counts(db, token_id) == (0, 0, 0, 30)

    serials = sorted(sim_serials(simulator, server))
    changed = [{"serial_number": serial, "color": "RED"} for serial in serials[:3]]
    simulator.admin.modify_devices(server.uuid, changed)
    simulator.admin.add_devices(server.uuid, count=2)
    third = await sync.sync_now(token_id, full=True, force=True)
    assert (third.added, third.modified, third.deleted, third.unchanged) == (2, 3, 0, 27)
    assert await last_run_counts(db, token_id) == (2, 3, 0, 27)
    rows = await device_rows(db, token_id)
    assert {rows[serial].color for serial in serials[:3]} == {"RED"}


async def test_every_attempt_at_a_call_is_told_to_the_apple_answer_observers(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    server = simulator.create_server("Main", devices=3)
    token_id = await add(db, home, simulator, server, "main")
    told: list[tuple[str, str]] = []

    def observe(endpoint: str, code: str) -> None:
        told.append((endpoint, code))

    hooks.ON_APPLE_ANSWER.append(observe)
    try:
        simulator.admin.expire_sessions()
        sync = service(db, home)
        assert (await sync.sync_now(token_id, force=True)).outcome == "ok"
        assert ("/session", "ok") in told
        assert ("/server/devices", "ok") in told
        assert all(code == "ok" for _, code in told)
        told.clear()
        simulator.admin.faults(outage={"mode": "503"})
        report = await sync.sync_now(token_id, force=True)
        assert (report.outcome, report.error_code) == ("error", "apple_unavailable")
        # The client's four attempts at the call, each answered 503.
        failed = [answer for answer in told if answer[1] != "ok"]
        assert len(failed) == 4 and len(set(failed)) == 1
        assert failed[0][1] == "apple_unavailable"
    finally:
        hooks.ON_APPLE_ANSWER.remove(observe)
        simulator.admin.clear_faults()


async def test_a_move_reported_as_modified_counts_as_added(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    a = simulator.create_server("A", devices=5)
    b = simulator.create_server("B", devices=2)
    token_a = await add(db, home, simulator, a, "a")
    token_b = await add(db, home, simulator, b, "b")
    sync = service(db, home)
    await sync.sync_now(token_a, force=True)
    await sync.sync_now(token_b, force=True)
    moved = sorted(sim_serials(simulator, a))[:2]
    simulator.admin.move_devices(moved, b.uuid, op_type="modified")
    report_b = await sync.sync_now(token_b, force=True)
    assert (report_b.added, report_b.modified) == (2, 0)
    report_a = await sync.sync_now(token_a, force=True)
    assert report_a.deleted == 2
    assert set(moved) <= await live_serials(db, token_b)
    assert not set(moved) & await live_serials(db, token_a)


@pytest.mark.parametrize("how", ["expired", "invalid"])
async def test_a_bad_cursor_is_recovered_with_a_full_fetch(
    db: Database, home: Home, simulator: RunningSimulator, how: str
) -> None:
    server = simulator.create_server("Main", devices=12)
    token_id = await add(db, home, simulator, server, "main")
    sync = service(db, home)
    await sync.sync_now(token_id, force=True)
    if how == "expired":
        simulator.admin.expire_cursors(server.uuid)
    else:
        async with db.write() as session:
            await session.execute(
                update(tokens).where(tokens.c.id == token_id).values(cursor="bm90LWEtY3Vyc29y")
            )
    simulator.admin.add_devices(server.uuid, count=2)
    report = await sync.sync_now(token_id, force=True)
    assert (report.outcome, report.kind) == ("ok", "fetch")
    async with db.read() as session:
        recovered = (
            await session.execute(
                select(sync_runs.c.cursor_recovered).order_by(sync_runs.c.id.desc()).limit(1)
            )
        ).scalar_one()
    assert recovered is True
    assert await live_serials(db, token_id) == sim_serials(simulator, server)


@pytest.mark.parametrize(
    ("break_it", "code", "flag"),
    [
        ("terms", "terms_not_accepted", "terms_not_accepted"),
        ("revoke", "token_rejected", "token_rejected"),
        ("delete", "access_denied", "access_denied"),
    ],
)
async def test_token_errors_are_recorded_and_set_flags(
    db: Database, home: Home, simulator: RunningSimulator, break_it: str, code: str, flag: str
) -> None:
    server = simulator.create_server("Main", devices=3)
    token_id = await add(db, home, simulator, server, "main")
    sync = service(db, home)
    await sync.sync_now(token_id, force=True)
    if break_it == "terms":
        simulator.admin.set_terms_pending(server.org_id)
    elif break_it == "revoke":
        simulator.admin.revoke(server.uuid)
    else:
        simulator.admin.delete_server(server.uuid)
    simulator.admin.expire_sessions()
    report = await sync.sync_now(token_id, force=True)
    assert (report.outcome, report.error_code) == ("error", code)
    async with db.read() as session:
        row = (await session.execute(select(tokens).where(tokens.c.id == token_id))).one()
    assert getattr(row, flag) is True
    assert row.last_error_code == code and row.consecutive_failures == 1
    assert row.next_sync_at is not None and row.lease_owner is None
    # The devices synced before are kept.
    assert len(await live_serials(db, token_id)) == 3
    if break_it == "terms":
        simulator.admin.set_terms_pending(server.org_id, pending=False)
        ok, error = await sync.check(token_id)
        assert (ok, error) == (True, None)
        async with db.read() as session:
            row = (await session.execute(select(tokens).where(tokens.c.id == token_id))).one()
        assert row.terms_not_accepted is False


async def test_a_failure_mid_run_keeps_the_pages_already_committed(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    server = simulator.create_server("Big", devices=2500)
    token_id = await add(db, home, simulator, server, "big")
    # The first page works, then Apple answers 500 for good.
    simulator.admin.script("fetch_devices", (1, "success"), (99, "internal_server_error"))
    sync = service(db, home)
    report = await sync.sync_now(token_id, force=True)
    assert (report.outcome, report.error_code) == ("error", "apple_unavailable")
    kept = await live_serials(db, token_id)
    assert 0 < len(kept) < 2500
    simulator.admin.clear_faults()
    report = await sync.sync_now(token_id, force=True)
    assert report.outcome == "ok"
    assert await live_serials(db, token_id) == sim_serials(simulator, server)


class HeldSecondCommit:
    """The sync's store, whose second page commit waits, once started, for ``go``."""

    def __init__(self, repo: Any) -> None:
        self.repo = repo
        self.commits = 0
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.repo, name)

    async def commit_page(self, *args: Any, **kwargs: Any) -> Any:
        self.commits += 1
        if self.commits == 2:
            self.started.set()
            await self.go.wait()
        return await self.repo.commit_page(*args, **kwargs)


async def test_a_run_cancelled_mid_commit_finishes_the_page_and_records_it_interrupted(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    """Cancelled (a signal, a scheduler stopping) while a page is being committed, the run lets
    that page and its cursor commit, counts it, records itself ``interrupted`` and gives the
    token back; the cancellation goes on."""
    simulator.admin.settings(page_limit_maximum=100)
    server = simulator.create_server("Big", devices=500)
    token_id = await add(db, home, simulator, server, "big")
    sync = service(db, home)
    held = HeldSecondCommit(sync.repo)
    sync.repo = held
    running = asyncio.create_task(sync.sync_now(token_id, force=True))
    await held.started.wait()
    running.cancel()
    await asyncio.sleep(0)  # the cancellation is delivered while the commit is held
    held.go.set()
    with pytest.raises(asyncio.CancelledError):
        await running

    async with db.read() as session:
        (run,) = await session.execute(select(sync_runs))
        token = (await session.execute(select(tokens).where(tokens.c.id == token_id))).one()
    assert (run.outcome, run.kind, run.pages, run.added) == ("interrupted", "fetch", 2, 200)
    assert run.finished_at is not None
    assert len(await device_rows(db, token_id)) == 200
    assert token.cursor is not None and token.fetch_started_at is not None
    assert token.lease_owner is None
    assert held.commits == 2


async def test_manual_syncs_are_throttled_unless_forced(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    server = simulator.create_server("Main", devices=2)
    token_id = await add(db, home, simulator, server, "main")
    sync = service(db, home)
    assert (await sync.sync_now(token_id)).outcome == "ok"
    again = await sync.sync_now(token_id)
    assert again.outcome == "skipped" and again.error_code == "manual_sync_throttled"
    assert again.next_allowed_at is not None and again.next_allowed_at > utcnow()
    assert (await sync.sync_now(token_id, force=True)).outcome == "ok"
    full = await sync.sync_now(token_id, full=True, force=False)
    assert full.outcome == "skipped"


async def test_the_default_profile_is_assigned_and_failures_are_retried(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    server = simulator.create_server("Main", devices=10)
    token_id = await add(db, home, simulator, server, "main")
    sync = service(db, home)
    serials = sorted(sim_serials(simulator, server))
    await sync.sync_now(token_id, force=True)
    simulator.admin.fail_serials(server.uuid, serials[:2], times=1)
    simulator.admin.throttle_serials(server.uuid, serials[2:3], retry_after=120)
    profiles = ProfileService(sync)
    record, accepted = await profiles.define("main", dict(PROFILE), default=True)
    assert accepted == 7
    async with db.read() as session:
        statuses = dict(
            (await session.execute(select(assignments.c.serial_number, assignments.c.status))).all()
        )
        throttled_next = (
            await session.execute(
                select(assignments.c.next_attempt_at).where(
                    assignments.c.serial_number == serials[2]
                )
            )
        ).scalar_one()
    assert statuses[serials[0]] == "FAILED" and statuses[serials[2]] == "THROTTLED"
    assert throttled_next is not None and throttled_next > utcnow() + timedelta(seconds=100)
    # New devices get the default profile during sync.
    simulator.admin.add_devices(server.uuid, count=3)
    report = await sync.sync_now(token_id, force=True)
    assert report.assigned >= 3
    rows = await device_rows(db, token_id)
    assert all(
        rows[s].profile_uuid == record.profile_uuid
        for s in sim_serials(simulator, server)
        if s not in serials[:3]
    )
