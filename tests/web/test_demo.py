"""``adesync demo``'s seeding: five tokens in the promised states, a stub enrollment URL, and a
home that is never someone else's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from adesync.config import Settings
from adesync.simulator import Simulator
from adesync.web.demo import DemoError, prepare_home, seed
from tests.web.live import run_on_thread


def test_a_foreign_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DemoError, match="not made by `adesync demo`"):
        prepare_home(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_earlier_demo_home_is_started_afresh(tmp_path: Path) -> None:
    prepare_home(tmp_path)
    (tmp_path / "adesync.db").write_text("old")
    prepare_home(tmp_path)
    assert not (tmp_path / "adesync.db").exists()


@pytest.mark.slow
def test_the_demo_has_five_tokens_in_their_states(tmp_path: Path) -> None:
    from adesync.simulator import run_in_thread

    home = tmp_path / "demo"
    prepare_home(home)
    settings = Settings(home=home)
    sim = Simulator(devices=0, seed=7)
    apple_url, stop = run_in_thread(sim)
    try:
        setup = run_on_thread(lambda: seed(settings, sim, apple_url, "http://127.0.0.1:1"))
    finally:
        stop()
    states = {t["name"]: (t["state"], t["state_reason"], t["sync"]) for t in setup.tokens}
    assert states["acme-hq"][0] == "healthy" and states["acme-hq"][2] == "ok"
    assert states["acme-branch"][:2] == ("warning", "token_expiring")
    assert states["contoso-legacy"][:2] == ("error", "token_expired")
    assert states["northwind-school"][:2] == ("error", "terms_not_accepted")
    assert states["fabrikam-old"][:2] == ("error", "token_rejected")
    assert len(setup.password) >= 20
