"""Schemathesis against the enrollment routes of a live server, with an ingest key: no
generated body (JSON shapes, odd times, random base64) gets a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from adesync.config import Settings
from adesync.simulator import Simulator
from tests.web.live import Live, live_server

PATHS = ("/api/v1/webhooks/nanomdm", "/api/v1/webhooks/micromdm", "/api/v1/enrollment-events")


async def _seed(settings_: Settings, sim: Simulator, apple_url: str) -> dict[str, str]:
    from adesync.commands.admin import initialise
    from adesync.runtime import open_runtime
    from adesync.web import accounts
    from adesync.web.roles import Role

    await initialise(settings_)
    async with open_runtime(settings_) as rt:
        _, key = await accounts.create_api_key(rt.db, "mdm", Role.INGEST, actor="test")
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(tmp_path_factory.mktemp("fuzz") / "home", _seed, devices=0) as server:
        yield server


@pytest.mark.slow
def test_no_generated_event_gets_a_server_error(live: Live) -> None:
    from adesync.web.app import create_app

    schema = schemathesis.openapi.from_dict(create_app(live.settings).openapi())
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    found = [operation for operation in operations if operation.path in PATHS]
    assert len(found) == 3
    for operation in found:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def no_5xx(case: Any) -> None:
            response = case.call(base_url=live.url, headers=live.seeded)
            case.validate_response(response, checks=[not_a_server_error])

        no_5xx()
