"""Runs that end are recorded as ended: ``adesync sync`` and ``adesync worker`` stopped by a
signal, or killed, as real processes on both backends.

The simulator serves on a loopback port from a thread of this process, with a ``delay_ms``
fault so that a fetch lasts many pages; each test waits for the first page committed in the
database (the token's cursor), then signals the child. Where the signal lands does not change
what is asserted: the run's recorded pages are the pages committed, and the next run fetches
only the rest.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from adesync.config import load_settings
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_sync import devices, sync_runs, worker_heartbeats
from adesync.store.types import utcnow
from adesync.sync.service import SyncService
from tests.conftest import Home
from tests.sim_fixtures import RunningSimulator, SimServer, sim_keypair, simulator
from tests.sync.helpers import device_rows, insert_sim_token
from tests.sync.processes import (
    cli_env,
    duplicate_rows,
    finish,
    lease_of,
    run_cli,
    start_cli,
    wait_until,
)

__all__ = ["sim_keypair", "simulator"]

pytestmark = pytest.mark.slow

PAGE = 100
DEVICES = 1000
DELAY_MS = 300  # per Apple call: the fetch of 10 pages outlasts the wait for its first one


@pytest.fixture
async def db(home: Home) -> AsyncIterator[Database]:
    database = Database(home.db_url)
    yield database
    await database.dispose()


async def token_row(db: Database, token_id: int) -> Any:
    async with db.read() as session:
        return (await session.execute(select(tokens).where(tokens.c.id == token_id))).one()


async def runs_of(db: Database, token_id: int) -> list[Any]:
    async with db.read() as session:
        rows = await session.execute(
            select(sync_runs).where(sync_runs.c.token_id == token_id).order_by(sync_runs.c.id)
        )
        return list(rows)


async def stored_devices(db: Database, token_id: int) -> int:
    async with db.read() as session:
        query = select(func.count()).select_from(devices).where(devices.c.token_id == token_id)
        return int((await session.execute(query)).scalar_one())


async def first_page_committed(db: Database, token_id: int) -> bool:
    """A page is committed with its cursor; a full fetch starts without one."""
    return (await token_row(db, token_id)).cursor is not None


async def lease_expired(db: Database, token_id: int) -> bool:
    _, expires = await lease_of(db, token_id)
    return expires is None or expires < utcnow()


@dataclass
class SlowToken:
    """A token whose first sync is a slow fetch of DEVICES devices, and how many pages an
    uninterrupted first sync of such a token takes (measured on a twin, without the delay)."""

    token_id: int
    server: SimServer
    full_pages: int


async def slow_token(db: Database, home: Home, simulator: RunningSimulator) -> SlowToken:
    simulator.admin.settings(page_limit_maximum=PAGE)
    twin = simulator.create_server("Twin", devices=DEVICES)
    twin_id = await insert_sim_token(db, home.box, simulator, twin, "twin")
    reference = await SyncService(db, home.box, load_settings()).sync_now(twin_id, force=True)
    assert (reference.outcome, reference.kind) == ("ok", "fetch")
    server = simulator.create_server("North", devices=DEVICES)
    token_id = await insert_sim_token(db, home.box, simulator, server, "north")
    simulator.admin.faults(server.uuid, delay_ms=DELAY_MS)
    return SlowToken(token_id, server, reference.pages)


async def assert_the_next_sync_goes_on(
    db: Database, simulator: RunningSimulator, token: SlowToken, env: dict[str, str]
) -> None:
    """The next ``adesync sync`` fetches the rest from the stored cursor (not everything
    again), ends with Apple's devices, each stored once, and leaves the run before it
    ``interrupted``."""
    token_id = token.token_id
    state = await token_row(db, token_id)
    assert state.fetch_started_at is not None and state.cursor is not None  # a fetch under way
    committed_pages = await stored_devices(db, token_id) // PAGE
    simulator.admin.clear_faults(token.server.uuid)
    result = await run_cli("sync", "north", "--force", "--json", env=env)
    assert result.code == 0, result.err
    (report,) = result.json()
    assert (report["outcome"], report["kind"]) == ("ok", "fetch"), report
    assert committed_pages + report["pages"] == token.full_pages, (committed_pages, report)
    assert [run.outcome for run in await runs_of(db, token_id)] == ["interrupted", "ok"]
    rows = await device_rows(db, token_id)
    assert set(rows) == set(simulator.admin.serials(token.server.uuid, DEVICES + 1))
    assert not any(row.deleted for row in rows.values())
    assert await duplicate_rows(db) == []


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_a_signal_mid_sync_records_the_run_interrupted_and_the_next_sync_goes_on(
    db: Database, home: Home, simulator: RunningSimulator, signum: int, exit_code: int
) -> None:
    token = await slow_token(db, home, simulator)
    token_id = token.token_id
    env = cli_env()
    process = await start_cli("sync", "north", "--json", env=env)
    await wait_until(lambda: first_page_committed(db, token_id), "the first committed page")
    process.send_signal(signum)
    result = await finish(process)

    assert result.code == exit_code, result.err
    assert result.out == ""
    name = signal.Signals(signum).name
    assert result.err.strip().splitlines() == [
        f"Sync stopped by {name}: the devices fetched so far are kept, the run is recorded as "
        "interrupted, and the next sync goes on from where it stopped."
    ]
    (run,) = await runs_of(db, token_id)
    assert (run.outcome, run.kind, run.error_code) == ("interrupted", "fetch", None)
    assert run.finished_at is not None and run.duration_ms is not None
    assert run.pages >= 1
    # Its totals are the pages it committed, each of PAGE new devices.
    assert run.added == run.pages * PAGE == await stored_devices(db, token_id)
    assert await lease_of(db, token_id) == (None, None)

    await assert_the_next_sync_goes_on(db, simulator, token, env)


async def test_a_killed_sync_is_closed_as_interrupted_by_the_next_sync_once_its_lease_expired(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    token = await slow_token(db, home, simulator)
    token_id = token.token_id
    env = cli_env(ADESYNC_LEASE_SECONDS="5")
    process = await start_cli("sync", "north", "--json", env=env)
    await wait_until(lambda: first_page_committed(db, token_id), "the first committed page")
    process.kill()
    await process.wait()
    assert [run.outcome for run in await runs_of(db, token_id)] == ["running"]
    owner, _ = await lease_of(db, token_id)
    assert owner is not None and f":{process.pid}:" in owner

    await wait_until(lambda: lease_expired(db, token_id), "the dead process's lease to expire")
    await assert_the_next_sync_goes_on(db, simulator, token, env)
    # A killed process could not count its pages: the run says how it ended, not how far.
    assert (await runs_of(db, token_id))[0].finished_at is not None


async def test_a_stopping_worker_records_its_runs_interrupted_before_it_exits(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    token = await slow_token(db, home, simulator)  # the twin is not due again for an hour
    token_id = token.token_id
    env = cli_env()
    process = await start_cli("worker", "--concurrency", "1", env=env)
    await wait_until(lambda: first_page_committed(db, token_id), "the first committed page")
    process.send_signal(signal.SIGTERM)
    result = await finish(process)

    assert result.code == 0, result.err
    (run,) = await runs_of(db, token_id)
    assert (run.outcome, run.kind, run.trigger) == ("interrupted", "fetch", "schedule")
    assert run.pages >= 1 and run.added == run.pages * PAGE == await stored_devices(db, token_id)
    owner, _ = await lease_of(db, token_id)
    assert owner is None
    async with db.read() as session:
        beats = await session.execute(select(func.count()).select_from(worker_heartbeats))
        assert beats.scalar_one() == 0

    await assert_the_next_sync_goes_on(db, simulator, token, env)
