"""Events recorded before adesync knows the device: a real sync against the simulator (over
loopback HTTP) brings the device, and the page hook gives it its enrollment state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from adesync.config import load_settings
from adesync.enrollment import EventSource, native_event, record_events
from adesync.enrollment.jobs import refresh_after_page
from adesync.enrollment.state import ENROLLMENT_STATE_COLUMN
from adesync.store.database import Database
from adesync.store.tables_sync import devices
from adesync.store.types import utcnow
from adesync.sync import hooks
from adesync.sync.clients import client_factory
from adesync.sync.service import SyncService
from tests.conftest import Home
from tests.sim_fixtures import RunningSimulator, sim_keypair, simulator
from tests.sync.helpers import insert_token

__all__ = ["sim_keypair", "simulator"]


@pytest.fixture
async def db(home: Home) -> Any:
    database = Database(home.db_url)
    yield database
    await database.dispose()


@pytest.fixture
def page_hook() -> Iterator[None]:
    """The page hook and the state column as :func:`adesync.wiring.install` registers them, for
    this test only."""
    saved = hooks.ON_PAGE_COMMITTED[:], hooks.DERIVED_DEVICE_COLUMNS[:]
    hooks.ON_PAGE_COMMITTED[:] = [refresh_after_page]
    hooks.DERIVED_DEVICE_COLUMNS[:] = [ENROLLMENT_STATE_COLUMN]
    yield
    hooks.ON_PAGE_COMMITTED[:], hooks.DERIVED_DEVICE_COLUMNS[:] = saved


async def no_wait(_seconds: float) -> None:
    return None


async def states(db: Database) -> dict[str, str | None]:
    async with db.read() as session:
        rows = await session.execute(select(devices.c.serial_number, devices.c.enrollment_state))
        return {serial: state for serial, state in rows}


async def test_devices_that_sync_after_their_events_take_them_over(
    db: Database, home: Home, simulator: RunningSimulator, page_hook: None
) -> None:
    server = simulator.create_server("Main", devices=3)
    first, second, third = simulator.admin.serials(server.uuid, 3)
    now = utcnow()
    early = [
        native_event(
            {
                "serial_number": first,
                "event": "enrolled",
                "at": (now - timedelta(days=1)).isoformat(),
            },
            EventSource.API,
            now,
        )
    ]
    assert (await record_events(db, early, now)).unknown_serials == 1

    token_id = await insert_token(
        db,
        home.box,
        "main",
        lease_owner=None,
        credentials=server.credentials,
        dep_url=simulator.base_url,
    )
    settings = load_settings()
    sync = SyncService(db, home.box, settings, make_client=client_factory(settings, sleep=no_wait))
    assert (await sync.sync_now(token_id, force=True)).outcome == "ok"
    assert await states(db) == {first: "enrolled", second: "not_contacted", third: "not_contacted"}

    # A device assigned in ABM later, whose Authenticate reached adesync first.
    [late] = simulator.admin.add_devices(server.uuid, 1)
    authenticated = native_event(
        {"serial_number": late, "event": "authenticated", "at": now.isoformat()},
        EventSource.API,
        now,
    )
    await record_events(db, [authenticated], now)
    report = await sync.sync_now(token_id, force=True)
    assert (report.outcome, report.kind, report.added) == ("ok", "sync", 1)
    assert (await states(db))[late] == "pushed"
