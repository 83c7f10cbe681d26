"""``adesync demo`` tells the enrollment story: acme-hq's devices all enroll, a few of
acme-branch's never do, and pushed_not_enrolled shows for acme-branch only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adesync.config import Settings
from adesync.enrollment import Funnel, enrollment_funnel
from adesync.health.stored import read_health
from adesync.simulator import Simulator, run_in_thread
from adesync.store.database import Database
from adesync.web.demo import prepare_home, seed
from tests.web.live import run_on_thread


@pytest.mark.slow
def test_the_demo_shows_devices_stuck_in_pushed(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    prepare_home(home)
    settings = Settings(home=home)
    sim = Simulator(devices=0, seed=7)
    apple_url, stop = run_in_thread(sim)
    try:
        setup = run_on_thread(lambda: seed(settings, sim, apple_url, "http://127.0.0.1:1"))
    finally:
        stop()
    states = {t["name"]: (t["state"], t["state_reason"]) for t in setup.tokens}
    assert states["acme-hq"] == ("healthy", None)

    async def read() -> tuple[Funnel, Funnel, dict[str, set[str]]]:
        db = Database(settings.effective_database_url)
        try:
            hq = await enrollment_funnel(db, "acme-hq")
            branch = await enrollment_funnel(db, "acme-branch")
            health = await read_health(db)
            codes = {t.label.name: {s.finding.code for s in t.findings} for t in health.tokens}
            return hq, branch, codes
        finally:
            await db.dispose()

    hq, branch, codes = asyncio.run(read())
    assert (hq.pushed, hq.enrolled) == (40, 40)
    assert (branch.pushed, branch.enrolled) == (30, 24)
    assert branch.by_state["failed"] == 2 and branch.by_state["pushed"] == 4
    assert "pushed_not_enrolled" in codes["acme-branch"]
    assert "pushed_not_enrolled" not in codes["acme-hq"]
