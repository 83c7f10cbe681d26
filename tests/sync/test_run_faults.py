"""Every run ends recorded: Apple refusing every call after a login, and the faults that are not
Apple's answer (a killed SQLite page writer, a terminated PostgreSQL backend, a full disk, a
defect), on both backends where the fault exists.

Each database fault is injected deterministically at the second page's commit, inside the page
transaction (the first page is committed by then): the run ends ``error`` with ``sync_failing``
and its detail, the token carries the error and backs off, the stored report shows the finding,
and the next sync goes on from the first page and clears it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.commands.diagnose import diagnose_report, stored_diagnose_report
from adesync.config import load_settings
from adesync.store.database import Database
from adesync.store.sync_repo import SyncRepo
from adesync.store.tables import tokens
from adesync.store.tables_sync import sync_runs
from adesync.store.types import utcnow
from adesync.sync.clients import client_factory
from adesync.sync.scheduler import Scheduler
from adesync.sync.service import SyncService
from tests.cli_runner import invoke
from tests.conftest import Home
from tests.sim_fixtures import RunningSimulator, sim_keypair, simulator
from tests.sync.helpers import insert_sim_token

__all__ = ["sim_keypair", "simulator"]

PAGE = 100
DEVICES = 300

Fault = Callable[[AsyncSession], Awaitable[None]]


@pytest.fixture
async def db(home: Home) -> AsyncIterator[Database]:
    database = Database(home.db_url)
    yield database
    await database.dispose()


async def no_wait(_seconds: float) -> None:
    return None


def service(db: Database, home: Home) -> SyncService:
    settings = load_settings()
    return SyncService(db, home.box, settings, make_client=client_factory(settings, sleep=no_wait))


async def token_row(db: Database, token_id: int) -> Any:
    async with db.read() as session:
        return (await session.execute(select(tokens).where(tokens.c.id == token_id))).one()


async def runs_of(db: Database, token_id: int) -> list[Any]:
    async with db.read() as session:
        query = select(sync_runs).where(sync_runs.c.token_id == token_id).order_by(sync_runs.c.id)
        return list(await session.execute(query))


async def stored_codes(home: Home, name: str) -> list[str]:
    report = await stored_diagnose_report(load_settings(), name, "en")
    return [finding["code"] for finding in report["findings"]]


async def north(db: Database, home: Home, simulator: RunningSimulator) -> int:
    simulator.admin.settings(page_limit_maximum=PAGE)
    server = simulator.create_server("North", devices=DEVICES)
    return await insert_sim_token(db, home.box, simulator, server, "north")


# -- Apple refuses every call after a login ---------------------------------------------------


async def test_a_401_after_every_login_ends_the_run_token_rejected_and_the_worker_backs_off(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    simulator.admin.settings(page_limit_maximum=PAGE)
    server = simulator.create_server("North", devices=DEVICES)
    token_id = await insert_sim_token(db, home.box, simulator, server, "north")
    simulator.admin.script("fetch_devices", (1000, "unauthorized"), server_uuid=server.uuid)
    settings = load_settings()
    scheduler = Scheduler(
        db, home.box, settings, make_client=client_factory(settings, sleep=no_wait)
    )

    assert await scheduler.tick() == 1
    await asyncio.gather(*scheduler.running)

    (run,) = await runs_of(db, token_id)
    assert (run.outcome, run.error_code, run.error_detail) == ("error", "token_rejected", None)
    row = await token_row(db, token_id)
    assert (row.last_error_code, row.last_error_status, row.consecutive_failures) == (
        "token_rejected",
        401,
        1,
    )
    assert row.lease_owner is None
    assert row.next_sync_at is not None and row.next_sync_at > utcnow()
    # Not due again: the next tick claims nothing (1,446 runs in 20 s before the fix).
    assert await scheduler.tick() == 0
    assert len(await runs_of(db, token_id)) == 1
    assert "token_rejected" in await stored_codes(home, "north")


# -- faults that are not Apple's answer --------------------------------------------------------


def on_second_page(monkeypatch: pytest.MonkeyPatch, fault: Fault) -> list[int]:
    """Run ``fault`` in the transaction of the second page and of every page after it, before
    its devices are written (the first page is committed)."""
    original = SyncRepo._apply_fetch
    pages: list[int] = []

    async def apply_fetch(self: SyncRepo, session: AsyncSession, *args: Any) -> None:
        pages.append(len(pages) + 1)
        if len(pages) >= 2:
            await fault(session)
        await original(self, session, *args)

    monkeypatch.setattr(SyncRepo, "_apply_fetch", apply_fetch)
    return pages


def sqlite_writers() -> list[int]:
    """The pids of this process's SQLite page writers (``sqlite_child.py``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"sqlite_child.py" in command:
            found.append(int(entry.name))
    return found


async def kill_the_writer(session: AsyncSession | None) -> None:
    """Kill this process's SQLite page writer (with ``session``: in the middle of its page's
    transaction, which has begun)."""
    if session is not None:
        await session.execute(text("SELECT count(*) FROM devices"))
    (pid,) = sqlite_writers()
    os.kill(pid, signal.SIGKILL)
    for _ in range(500):
        if pid not in sqlite_writers():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the SQLite page writer did not die")


async def terminate_the_backend(session: AsyncSession) -> None:
    pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    other = Database(load_settings().database_url)
    try:
        async with other.engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
    finally:
        await other.dispose()


async def fill_the_disk(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "sqlite":
        # This connection (the page writer's) may not grow the file any more.
        pages = (await session.execute(text("PRAGMA page_count"))).scalar_one()
        await session.execute(text(f"PRAGMA max_page_count = {pages}"))
        return
    # Rolled back with the page: the trigger lives in its transaction only.
    await session.execute(
        text(
            "CREATE FUNCTION pg_temp.full_disk() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'could not extend file: No space left on device' "
            "USING ERRCODE = 'disk_full'; END $$"
        )
    )
    await session.execute(
        text(
            "CREATE TRIGGER full_disk BEFORE INSERT OR UPDATE ON devices "
            "FOR EACH ROW EXECUTE FUNCTION pg_temp.full_disk()"
        )
    )


async def a_defect(_session: AsyncSession) -> None:
    raise RuntimeError("a defect in a page's commit")


FAULTS: dict[str, tuple[Fault, str, str | None]] = {
    "killed_writer": (kill_the_writer, "database_unavailable", "sqlite"),
    "terminated_backend": (terminate_the_backend, "database_unavailable", "postgresql"),
    "disk_full": (fill_the_disk, "disk_full", None),
    "defect": (a_defect, "internal_error", None),
}


# Each fault on the backends it exists on (``db_url`` narrowed: a fault of one backend is not
# a skipped test of the other).
FAULT_CASES = [
    pytest.param(fault, backend, id=f"{fault}-{backend}")
    for fault, (_, _, only) in FAULTS.items()
    for backend in (only,)
    if only is not None
] + [
    pytest.param(fault, backend, id=f"{fault}-{backend}")
    for fault, (_, _, only) in FAULTS.items()
    if only is None
    for backend in ("sqlite", "postgresql")
]


@pytest.mark.parametrize(("fault", "db_url"), FAULT_CASES, indirect=["db_url"])
async def test_a_fault_mid_run_ends_it_sync_failing_recorded_and_the_next_sync_goes_on(
    db: Database,
    home: Home,
    simulator: RunningSimulator,
    fault: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    inject, detail, _ = FAULTS[fault]
    token_id = await north(db, home, simulator)
    with pytest.MonkeyPatch.context() as patch:
        on_second_page(patch, inject)
        report = await service(db, home).sync_now(token_id, force=True)

    assert (report.outcome, report.error_code, report.error_detail) == (
        "error",
        "sync_failing",
        detail,
    )
    assert report.message is not None and "not at Apple" in report.message
    assert report.pages == 1
    (run,) = await runs_of(db, token_id)
    assert (run.outcome, run.error_code, run.error_detail, run.pages) == (
        "error",
        "sync_failing",
        detail,
        1,
    )
    assert run.error_reference and run.finished_at is not None
    # The traceback is in the log under the run's reference.
    logged = [r for r in caplog.records if run.error_reference in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    if detail == "internal_error":
        assert run.error_reference in report.message
    row = await token_row(db, token_id)
    assert (row.last_error_code, row.last_error_detail, row.last_error_reference) == (
        "sync_failing",
        detail,
        run.error_reference,
    )
    assert row.consecutive_failures == 1 and row.lease_owner is None
    assert row.next_sync_at is not None and row.next_sync_at > utcnow() + timedelta(seconds=30)
    assert row.cursor is not None  # the first page's
    assert "sync_failing" in await stored_codes(home, "north")

    # The fault gone, the next sync (a new writer, a new connection) resumes and clears it.
    again = Database(home.db_url)
    try:
        report = await service(again, home).sync_now(token_id, force=True)
    finally:
        await again.dispose()
    assert (report.outcome, report.added) == ("ok", DEVICES - PAGE)  # the first page is kept
    assert [r.outcome for r in await runs_of(db, token_id)] == ["error", "ok"]
    assert (await token_row(db, token_id)).consecutive_failures == 0
    assert "sync_failing" not in await stored_codes(home, "north")


async def test_a_fault_that_persists_makes_sync_failing_an_error(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    token_id = await north(db, home, simulator)
    sync = service(db, home)
    with pytest.MonkeyPatch.context() as patch:
        on_second_page(patch, a_defect)
        assert (await sync.sync_now(token_id, force=True)).error_code == "sync_failing"
        assert (await sync.sync_now(token_id, force=True)).error_code == "sync_failing"
    report = await diagnose_report(load_settings(), "north", "en")
    (finding,) = [f for f in report["findings"] if f["code"] == "sync_failing"]
    assert finding["severity"] == "error" and report["status"] == "error"
    assert "2 times in a row" in finding["detail"]


def test_the_cli_prints_the_runs_outcome_and_one_sentence_not_unexpected_error(
    home: Home,
    simulator: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def setup() -> None:
        database = Database(home.db_url)
        try:
            await north(database, home, simulator)
        finally:
            await database.dispose()

    asyncio.run(setup())
    on_second_page(monkeypatch, a_defect)
    result = invoke(capsys, "sync", "north", "--force")
    assert result.code == 1
    assert "unexpected error" not in result.err and "Traceback" not in result.err
    assert "error" in result.out  # the run's row in the summary table
    (sentence,) = [line for line in result.err.splitlines() if line.startswith("north:")]
    assert sentence.startswith(
        "north: The sync failed on this server, not at Apple: an internal error (log reference "
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the page writer is SQLite's
async def test_a_sqlite_writer_killed_between_runs_is_replaced_by_the_next_run(
    db: Database, home: Home, simulator: RunningSimulator
) -> None:
    simulator.admin.settings(page_limit_maximum=PAGE)
    server = simulator.create_server("North", devices=DEVICES)
    token_id = await insert_sim_token(db, home.box, simulator, server, "north")
    sync = service(db, home)
    assert (await sync.sync_now(token_id, force=True)).outcome == "ok"
    await kill_the_writer(None)
    simulator.admin.add_devices(server.uuid, count=10)
    report = await sync.sync_now(token_id, force=True)
    assert (report.outcome, report.added) == ("ok", 10)
