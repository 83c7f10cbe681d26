"""A serve process (one worker or each of N) compiles the console's templates and freezes its
start-up objects once it has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from adesync.config import Settings
from adesync.store.database import Database
from adesync.store.keycheck import adopt_key
from adesync.store.secrets import SecretBox
from adesync.web.app import create_app
from adesync.web.console.render import TEMPLATES
from adesync.web.runner import serving_hooks


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
@pytest.mark.parametrize("scheduler", [0, 2], ids=["no-scheduler", "scheduler"])
async def test_start_up_objects_are_frozen_once_the_app_has_started(
    db: Database, box: SecretBox, tmp_path: Path, scheduler: int
) -> None:
    await adopt_key(db, box)
    app = create_app(
        Settings(home=tmp_path / "home"), db=db, box=box, on_start=serving_hooks(scheduler)
    )
    assert gc.get_freeze_count() == 0
    cache = TEMPLATES.env.cache
    assert cache is not None
    cache.clear()
    async with LifespanManager(app):
        assert gc.get_freeze_count() > 0
        compiled = {template.name for template in cache.values()}
        assert compiled == set(TEMPLATES.env.list_templates())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            assert (await client.get("/healthz")).status_code == 200
