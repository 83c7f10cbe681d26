"""Device events are written in their page's transaction: ``adesync sync`` killed right after a
page's commit (held there by a test barrier) has queued a ``devices.synced`` event for every
device it stored, and the next sync, once the dead process's lease has expired, closes its run
``interrupted`` and announces the rest, each device once. Real processes, both backends."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from adesync.store.database import Database
from adesync.store.tables_health import notify_outbox
from adesync.store.tables_sync import devices, sync_runs
from adesync.store.types import utcnow
from tests.conftest import Home
from tests.sim_fixtures import RunningSimulator, sim_keypair, simulator
from tests.sync.helpers import insert_sim_token
from tests.sync.processes import cli_env, lease_of, run_cli, wait_until

__all__ = ["sim_keypair", "simulator"]

pytestmark = pytest.mark.slow

PAGE = 100
DEVICES = 500
HOLD_AFTER_PAGES = 2

# ``adesync`` with a barrier: after the Nth committed page with devices it writes the barrier
# file and blocks its event loop, so the kill lands between that commit and anything after it.
LAUNCHER = """
import os, pathlib, sys, time
from adesync.store.sync_repo import SyncRepo

original = SyncRepo.commit_page
committed = []

async def commit_page(self, token_id, worker, records, *args, **kwargs):
    result = await original(self, token_id, worker, records, *args, **kwargs)
    if records:
        committed.append(len(records))
        if len(committed) == int(os.environ["HOLD_AFTER_PAGES"]):
            pathlib.Path(os.environ["BARRIER"]).write_text(str(sum(committed)))
            time.sleep(3600)
    return result

SyncRepo.commit_page = commit_page
from adesync.cli import main
sys.argv[0] = "adesync"
main()
"""


@pytest.fixture
async def db(home: Home) -> AsyncIterator[Database]:
    database = Database(home.db_url)
    yield database
    await database.dispose()


async def stored_serials(db: Database, token_id: int) -> list[str]:
    async with db.read() as session:
        query = select(devices.c.serial_number).where(devices.c.token_id == token_id)
        return list((await session.execute(query)).scalars())


async def announced(db: Database) -> Counter[str]:
    """How many ``devices.synced`` events name each serial."""
    async with db.read() as session:
        query = select(notify_outbox.c.payload).where(notify_outbox.c.channel == "device_events")
        payloads = list((await session.execute(query)).scalars())
    return Counter(
        device["serial_number"] for payload in payloads for device in json.loads(payload)["devices"]
    )


async def test_a_sync_killed_right_after_a_page_commit_loses_no_device_event(
    db: Database, home: Home, simulator: RunningSimulator, tmp_path: Path
) -> None:
    simulator.admin.settings(page_limit_maximum=PAGE)
    server = simulator.create_server("North", devices=DEVICES)
    token_id = await insert_sim_token(db, home.box, simulator, server, "north")
    barrier = tmp_path / "barrier"
    env = cli_env(
        ADESYNC_DEVICE_EVENTS_URL="http://127.0.0.1:9/events",
        ADESYNC_DEVICE_EVENTS_SECRET="events",
        ADESYNC_LEASE_SECONDS="5",
        BARRIER=str(barrier),
        HOLD_AFTER_PAGES=str(HOLD_AFTER_PAGES),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LAUNCHER,
        "sync",
        "north",
        "--json",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
    )

    async def at_barrier() -> bool:
        return barrier.exists()

    try:
        await wait_until(at_barrier, "the barrier after a page's commit", timeout=120)
    finally:
        process.kill()
        await process.wait()

    stored = await stored_serials(db, token_id)
    assert len(stored) == int(barrier.read_text()) == HOLD_AFTER_PAGES * PAGE
    events = await announced(db)
    assert set(events) == set(stored)  # every stored device has its event, and no other

    async def lease_expired() -> bool:
        _, expires = await lease_of(db, token_id)
        return expires is None or expires < utcnow()

    await wait_until(lease_expired, "the dead process's lease to expire")
    result = await run_cli("sync", "north", "--force", "--json", env=env)
    assert result.code == 0, result.err
    async with db.read() as session:
        outcomes = list(
            (
                await session.execute(
                    select(sync_runs.c.outcome)
                    .where(sync_runs.c.token_id == token_id)
                    .order_by(sync_runs.c.id)
                )
            ).scalars()
        )
    assert outcomes == ["interrupted", "ok"]
    stored = await stored_serials(db, token_id)
    assert len(stored) == DEVICES
    assert await announced(db) == Counter(dict.fromkeys(stored, 1))
