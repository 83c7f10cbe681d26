"""Schemathesis against the OpenAPI document of a live server: no generated request, with or
without an admin key, gets a 5xx. The example count is bounded so the suite stays fast."""

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

MAX_EXAMPLES = 12


async def _seed(settings_: Settings, sim: Simulator, apple_url: str) -> dict[str, str]:
    from adesync.commands.admin import initialise
    from adesync.runtime import open_runtime
    from adesync.services import tokens as token_service
    from adesync.services.apple_account import make_verifier
    from adesync.sync.service import SyncService
    from adesync.web import accounts
    from adesync.web.roles import Role

    await initialise(settings_)
    async with open_runtime(settings_) as rt:
        cert = await token_service.keypair_certificate(rt.db, rt.box, "acme")
        download = sim.create_server("acme", certificate_pem=cert.certificate_pem, devices=6)
        assert download.p7m is not None
        await token_service.add_token(
            rt.db,
            rt.box,
            "acme",
            download.p7m,
            dep_url=apple_url,
            verify=make_verifier(settings_),
        )
        await SyncService(rt.db, rt.box, settings_).sync_named(None, trigger="add")
        _, key = await accounts.create_api_key(rt.db, "fuzz", Role.ADMIN, actor="test")
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(tmp_path_factory.mktemp("schema") / "home", _seed) as server:
        yield server


def operations(live: Live) -> list[Any]:
    from adesync.web.app import create_app

    schema = schemathesis.openapi.from_dict(create_app(live.settings).openapi())
    return [result.ok() for result in schema.get_all_operations()]


def test_no_generated_request_gets_a_server_error(live: Live) -> None:
    found = operations(live)
    assert len(found) >= 25
    for operation in found:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def no_5xx(case: Any) -> None:
            for headers in (live.seeded, {}):
                response = case.call(base_url=live.url, headers=headers)
                case.validate_response(response, checks=[not_a_server_error])

        no_5xx()
