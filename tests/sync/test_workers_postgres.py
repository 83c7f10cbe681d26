"""Four ``adesync worker`` processes and 200 tokens sharing one PostgreSQL database.

Every token gets synced, no token is ever synced by two workers at once (checked from the
recorded ``sync_runs``: per token, no two runs overlap in time), and a worker killed with
SIGKILL in the middle of a sync has its tokens taken over once their leases expire.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_sync import devices, sync_runs, worker_heartbeats
from adesync.store.types import utcnow
from tests.conftest import Home
from tests.sim_fixtures import RunningSimulator, sim_keypair, simulator
from tests.sync.helpers import insert_sim_token
from tests.sync.processes import cli_env, duplicate_rows, lease_of, wait_until

__all__ = ["sim_keypair", "simulator"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("db_url", ["postgresql"], indirect=True),
]

TOKENS = 200
DEVICES = 10
WORKERS = 4
SLOW = 6  # tokens whose every Apple call takes DELAY_MS, so a kill lands mid-sync
DELAY_MS = 1200


@pytest.fixture
async def db(home: Home) -> AsyncIterator[Database]:
    database = Database(home.db_url)
    yield database
    await database.dispose()


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The worker processes a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "adesync.cli", "worker", "--concurrency", "4"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def pid_of(worker_id: str) -> int:
    """Worker ids are ``kind:host:pid:random``."""
    return int(worker_id.split(":")[2])


async def runs(db: Database) -> list[Any]:
    async with db.read() as session:
        return list(
            await session.execute(
                select(
                    sync_runs.c.token_id,
                    sync_runs.c.worker,
                    sync_runs.c.started_at,
                    sync_runs.c.finished_at,
                    sync_runs.c.outcome,
                ).order_by(sync_runs.c.token_id, sync_runs.c.started_at)
            )
        )


async def tokens_synced(db: Database) -> int:
    async with db.read() as session:
        return int(
            (
                await session.execute(
                    select(func.count(func.distinct(sync_runs.c.token_id))).where(
                        sync_runs.c.outcome == "ok"
                    )
                )
            ).scalar_one()
        )


async def heartbeats(db: Database) -> set[str]:
    async with db.read() as session:
        return set((await session.execute(select(worker_heartbeats.c.worker_id))).scalars())


async def test_four_workers_sync_200_tokens_and_take_over_a_killed_ones(
    db: Database,
    home: Home,
    simulator: RunningSimulator,
    workers: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    # One certificate for every server; tokens seeded from each server's OAuth values.
    token_ids: list[int] = []
    slow: set[int] = set()
    for n in range(TOKENS):
        server = simulator.create_server(f"MDM {n:03d}", devices=DEVICES)
        if n < SLOW:
            simulator.admin.faults(server.uuid, delay_ms=DELAY_MS)
        token_id = await insert_sim_token(db, home.box, simulator, server, f"t{n:03d}")
        token_ids.append(token_id)
        if n < SLOW:
            slow.add(token_id)

    env = cli_env(ADESYNC_LEASE_SECONDS="5", ADESYNC_SCHEDULER_POLL_SECONDS="0.2")
    for n in range(WORKERS):
        workers.append(start_worker(env, tmp_path / f"worker{n}.log"))
    await wait_until(
        lambda: _all_beating(db, WORKERS), "every worker's heartbeat", timeout=60, every=0.1
    )

    # Kill the worker that is in the middle of syncing a slow token.
    async def running_slow_sync() -> Any:
        return next(
            (r for r in await runs(db) if r.token_id in slow and r.outcome == "running"), None
        )

    victim_run = await wait_until(running_slow_sync, "a slow token's sync to start", timeout=60)
    victim_pid = pid_of(victim_run.worker)
    (victim,) = [w for w in workers if w.pid == victim_pid]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    killed_at = utcnow()
    owner, expires_at = await lease_of(db, victim_run.token_id)
    assert owner == victim_run.worker  # the dead worker's lease is still on the token
    assert expires_at is not None

    await wait_until(
        lambda: _count_is(db, TOKENS), "every token to be synced", timeout=90, every=0.2
    )
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in workers:
        code = await asyncio.to_thread(process.wait, 30)
        if process is not victim:
            assert code == 0, (tmp_path / "worker0.log").read_text()

    recorded = await runs(db)
    by_token: dict[int, list[Any]] = defaultdict(list)
    for run in recorded:
        by_token[run.token_id].append(run)
    assert set(by_token) == set(token_ids)
    for token_id, token_runs in by_token.items():
        assert any(r.outcome == "ok" for r in token_runs), token_id
        # Never two at once: each run starts after the previous one ended (a run of the killed
        # worker never ended; it stopped when the process died).
        for before, after in pairwise(token_runs):
            ended: datetime = before.finished_at or killed_at
            if before.finished_at is None:
                assert before.worker == victim_run.worker, before
            assert after.started_at >= ended, (token_id, before, after)

    # The killed worker's token was taken over by another worker once its lease expired.
    takeover = [
        r
        for r in by_token[victim_run.token_id]
        if r.worker != victim_run.worker and r.outcome == "ok"
    ]
    assert takeover, by_token[victim_run.token_id]
    assert takeover[0].started_at >= expires_at
    assert len({r.worker for r in recorded}) == WORKERS

    async with db.read() as session:
        live = {
            int(token_id): int(count)
            for token_id, count in await session.execute(
                select(devices.c.token_id, func.count())
                .where(devices.c.deleted.is_(False))
                .group_by(devices.c.token_id)
            )
        }
        leased = set(
            (
                await session.execute(
                    select(tokens.c.lease_owner).where(tokens.c.lease_owner.is_not(None))
                )
            ).scalars()
        )
    assert live == {token_id: DEVICES for token_id in token_ids}
    assert await duplicate_rows(db) == []
    # Only the dead worker may still have leases (it can die after a run, before releasing).
    assert leased <= {victim_run.worker}
    # The dead worker's heartbeat stays behind (health reports it stale); the others left.
    assert await heartbeats(db) == {victim_run.worker}


async def _all_beating(db: Database, count: int) -> bool:
    return len(await heartbeats(db)) >= count


async def _count_is(db: Database, count: int) -> bool:
    return await tokens_synced(db) >= count
