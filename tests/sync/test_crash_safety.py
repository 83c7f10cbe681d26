"""Crash safety: ``adesync sync`` killed with SIGKILL between pages and mid-page, then run again.

Real processes on both backends: the simulator serves on a loopback port from a thread of this
process, each ``adesync sync`` is a child process with a 5-second lease, and the simulator's
``delay_ms`` fault makes each page slow enough to kill the child after a known number of
committed pages. The next run must wait out the dead process's lease, resume, and end with
exactly the simulator's devices, each stored once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from adesync.config import load_settings
from adesync.store.database import Database
from adesync.store.lease_repo import claim_token
from adesync.store.run_repo import mark_interrupted_runs
from adesync.store.tables_sync import device_history, devices, sync_runs
from adesync.store.types import utcnow
from adesync.sync.service import SyncService
from tests.conftest import Home
from tests.sim_fixtures import RunningSimulator, SimServer, sim_keypair, simulator
from tests.sync.helpers import device_rows, insert_token
from tests.sync.processes import (
    cli_env,
    duplicate_rows,
    lease_of,
    run_cli,
    start_cli,
    wait_until,
)

__all__ = ["sim_keypair", "simulator"]

pytestmark = pytest.mark.slow

PAGE = 100
DELAY_MS = 250
KILL_AFTER_PAGES = 3
LEASE_SECONDS = "5"


@pytest.fixture
async def db(home: Home) -> AsyncIterator[Database]:
    database = Database(home.db_url)
    yield database
    await database.dispose()


async def stored_devices(db: Database, token_id: int) -> int:
    async with db.read() as session:
        return int(
            (
                await session.execute(
                    select(func.count()).select_from(devices).where(devices.c.token_id == token_id)
                )
            ).scalar_one()
        )


async def stored_operations(db: Database, token_id: int) -> int:
    """Device operations a sync has written (one history row per device of a page)."""
    async with db.read() as session:
        return int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(device_history)
                    .where(device_history.c.token_id == token_id, device_history.c.kind == "op")
                )
            ).scalar_one()
        )


async def lease_expired(db: Database, token_id: int) -> bool:
    _, expires = await lease_of(db, token_id)
    return expires is None or expires < utcnow()


def sim_serials(simulator: RunningSimulator, server: SimServer) -> set[str]:
    return set(simulator.admin.serials(server.uuid, 10_000))


async def run_outcomes(db: Database, token_id: int) -> list[str]:
    async with db.read() as session:
        rows = await session.execute(
            select(sync_runs.c.outcome)
            .where(sync_runs.c.token_id == token_id)
            .order_by(sync_runs.c.id)
        )
        return list(rows.scalars())


@pytest.mark.parametrize(
    ("phase", "moment"),
    [("fetch", "between_pages"), ("fetch", "mid_page"), ("sync", "mid_page")],
)
async def test_a_killed_sync_resumes_and_ends_with_the_simulators_devices(
    db: Database, home: Home, simulator: RunningSimulator, phase: str, moment: str
) -> None:
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    simulator.admin.settings(page_limit_maximum=PAGE)
    server = simulator.create_server("Crash", devices=1000 if phase == "fetch" else 300)
    elsewhere = simulator.create_server("Elsewhere", devices=0)
    token_id = await insert_token(
        db,
        home.box,
        "crash",
        lease_owner=None,
        credentials=server.credentials,
        dep_url=simulator.base_url,
    )
    env = cli_env(ADESYNC_LEASE_SECONDS=LEASE_SECONDS)
    initial = sorted(sim_serials(simulator, server))
    if phase == "sync":
        # A first, complete fetch in this process; then 800 changes for the killed sync.
        service = SyncService(db, home.box, load_settings())
        assert (await service.sync_now(token_id, force=True)).outcome == "ok"
        simulator.admin.add_devices(server.uuid, count=500)
        simulator.admin.modify_devices(
            server.uuid, [{"serial_number": s, "color": "GREEN"} for s in initial[:200]]
        )
        simulator.admin.move_devices(initial[200:300], elsewhere.uuid)
        progress = stored_operations
    else:
        progress = stored_devices
    before = await progress(db, token_id)

    simulator.admin.faults(server.uuid, delay_ms=DELAY_MS)
    process = await start_cli("sync", "crash", "--force", "--json", env=env)

    async def pages_done() -> bool:
        return (await progress(db, token_id)) - before >= KILL_AFTER_PAGES * PAGE

    await wait_until(pages_done, f"{KILL_AFTER_PAGES} committed pages", timeout=90)
    if moment == "mid_page":
        await asyncio.sleep(rng.uniform(0, DELAY_MS / 1000))
    process.kill()
    await process.wait()
    note = f"(phase {phase}, moment {moment}, seed {seed})"

    # Whole pages only, and the dead process still holds the lease.
    assert ((await progress(db, token_id)) - before) % PAGE == 0, note
    owner, _ = await lease_of(db, token_id)
    assert owner is not None and f":{process.pid}:" in owner, (owner, note)
    assert not await claim_token(db, token_id, "test", utcnow(), 5), note

    # Meanwhile in Apple Business Manager: devices come, change and go, fetched or not.
    serials = sorted(sim_serials(simulator, server))
    simulator.admin.add_devices(server.uuid, count=30)
    recoloured = serials[:5] + serials[-5:]
    simulator.admin.modify_devices(
        server.uuid, [{"serial_number": s, "color": "RED"} for s in recoloured]
    )
    simulator.admin.move_devices(serials[5:15] + serials[-15:-5], elsewhere.uuid)
    simulator.admin.clear_faults(server.uuid)

    # The dead process's run stays "running" while its lease lasts (it may still be alive)...
    assert await mark_interrupted_runs(db, utcnow()) == 0, note
    # ...the lease runs out on its own (5 s after its last renewal), and the run is closed...
    await wait_until(lambda: lease_expired(db, token_id), "the lease to expire", timeout=15)
    assert await mark_interrupted_runs(db, utcnow()) == 1, note
    assert (await run_outcomes(db, token_id))[-1] == "interrupted", note
    # ...and the next run takes the token and finishes what the killed one started.
    result = await run_cli("sync", "crash", "--force", "--json", env=env)
    assert result.code == 0, (result.err, note)
    (report,) = result.json()
    assert (report["outcome"], report["kind"]) == ("ok", phase), (report, note)

    rows = await device_rows(db, token_id)
    live = {serial for serial, row in rows.items() if not row.deleted}
    assert live == sim_serials(simulator, server), note
    assert await duplicate_rows(db) == [], note
    assert {rows[s].color for s in recoloured} == {"RED"}, note
    if phase == "sync":
        kept = [s for s in initial[:200] if s in live and s not in recoloured]
        assert kept and {rows[s].color for s in kept} == {"GREEN"}, note
        assert all(rows[s].deleted for s in initial[200:300]), note
    assert (await lease_of(db, token_id))[0] is None, note
    assert (await run_outcomes(db, token_id))[-2:] == ["interrupted", "ok"], note
