"""The scheduler against the simulator over loopback HTTP, on both backends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import func, select

from adesync.config import load_settings
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.store.tables import tokens
from adesync.store.tables_sync import sync_runs
from adesync.sync import hooks
from adesync.sync.scheduler import Scheduler
from tests.conftest import Home
from tests.sim_fixtures import RunningSimulator, sim_keypair, simulator
from tests.sync.helpers import insert_sim_token
from tests.sync.processes import wait_until

__all__ = ["sim_keypair", "simulator"]


@pytest.fixture
async def db(home: Home) -> AsyncIterator[Database]:
    database = Database(home.db_url)
    yield database
    await database.dispose()


async def ok_runs(db: Database) -> int:
    async with db.read() as session:
        query = select(func.count()).select_from(sync_runs).where(sync_runs.c.outcome == "ok")
        return int((await session.execute(query)).scalar_one())


async def test_a_busy_scheduler_takes_the_next_due_token_when_a_slot_frees_up(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    """The bug: with every slot busy, a tick claimed nothing and the loop then slept a whole
    poll period, so a worker synced ``concurrency`` tokens per poll period at most."""
    for n in range(3):
        server = simulator.create_server(f"MDM {n}", devices=5)
        await insert_sim_token(db, home.box, simulator, server, f"t{n}")
    scheduler = Scheduler(db, home.box, load_settings(), concurrency=1, poll_seconds=60)
    async with running(scheduler):
        # Three tokens one after another, well within one poll period.
        await wait_until(lambda: _all_synced(db, 3), "three synced tokens", timeout=30)


@contextlib.asynccontextmanager
async def running(scheduler: Scheduler) -> AsyncIterator[None]:
    """The scheduler running in the background, stopped (and awaited) on the way out."""
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)


async def _all_synced(db: Database, count: int) -> bool:
    return await ok_runs(db) >= count


async def test_after_sync_hooks_run_for_many_tokens_at_once_after_the_leases(
    db: Database, home: Home, simulator: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler hands the tokens it synced to the after-sync hooks (health, metrics) in
    batches, once their leases are given back; each token exactly once, none forgotten."""
    ids = []
    for n in range(6):
        server = simulator.create_server(f"MDM {n}", devices=3)
        ids.append(await insert_sim_token(db, home.box, simulator, server, f"t{n}"))
    calls: list[tuple[list[int], list[str | None]]] = []

    async def spy(db_: Database, box: SecretBox, token_ids: Sequence[int]) -> None:
        async with db_.read() as session:
            owners = await session.execute(
                select(tokens.c.lease_owner).where(tokens.c.id.in_(token_ids))
            )
            calls.append((list(token_ids), list(owners.scalars())))

    monkeypatch.setattr(hooks, "AFTER_TOKEN_SYNC", [spy])
    scheduler = Scheduler(db, home.box, load_settings(), concurrency=6, poll_seconds=60)
    async with running(scheduler):
        await wait_until(lambda: _all_synced(db, 6), "six synced tokens", timeout=30)
        await wait_until(lambda: _true(sum(len(c[0]) for c in calls) == 6), "the hooks", timeout=10)
    assert sorted(i for batch, _ in calls for i in batch) == sorted(ids)
    assert len(calls) < 6  # batched, not one call per token
    assert all(owner is None for _, owners in calls for owner in owners)  # leases given back


async def _true(value: bool) -> bool:
    return value


async def test_a_stopping_scheduler_records_its_runs_interrupted_without_waiting_for_them(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    """``serve`` at shutdown and a stopping ``adesync worker`` stop their scheduler: the syncs
    under way are cancelled, each closes its run ``interrupted`` with the pages it committed
    and gives its lease back, even while every slot is busy with a long fetch."""
    simulator.admin.settings(page_limit_maximum=100)
    server = simulator.create_server("Slow", devices=1000)
    token_id = await insert_sim_token(db, home.box, simulator, server, "slow")
    simulator.admin.faults(server.uuid, delay_ms=300)
    scheduler = Scheduler(db, home.box, load_settings(), concurrency=1, kind="serve")
    async with running(scheduler):
        await wait_until(lambda: _cursor_stored(db, token_id), "the first committed page")
    async with db.read() as session:
        run = (await session.execute(select(sync_runs))).one()
        token = (await session.execute(select(tokens).where(tokens.c.id == token_id))).one()
    assert (run.outcome, run.kind, run.trigger) == ("interrupted", "fetch", "schedule")
    assert run.pages >= 1 and run.finished_at is not None
    assert token.fetch_started_at is not None  # the fetch was left under way, not waited for
    assert token.lease_owner is None


async def _cursor_stored(db: Database, token_id: int) -> bool:
    async with db.read() as session:
        query = select(tokens.c.cursor).where(tokens.c.id == token_id)
        return (await session.execute(query)).scalar_one() is not None
