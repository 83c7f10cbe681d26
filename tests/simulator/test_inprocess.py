"""The same app in-process through ``httpx.ASGITransport`` (how client tests may drive it)."""

from __future__ import annotations

import httpx
import pytest

from adesync.simulator import Simulator, create_app
from tests.sim_fixtures import signed_session_headers


async def test_the_app_serves_through_asgi_transport() -> None:
    sim = Simulator(devices=12, seed=2)
    download = sim.create_server("In-process")
    transport = httpx.ASGITransport(app=create_app(sim))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sim", headers={"User-Agent": "t/1"}
    ) as client:
        headers = signed_session_headers("http://sim", sim.credentials(download.server_uuid))
        token = (await client.get("/session", headers=headers)).json()["auth_session_token"]
        client.headers["X-ADM-Auth-Session"] = token
        page = (await client.post("/server/devices", json={"limit": 50})).json()
        assert len(page["devices"]) == 12 and page["more_to_follow"] is False

        sim.set_faults(outage={"mode": "drop"})
        with pytest.raises(httpx.TransportError):  # a client sees a network failure
            await client.get("/account")
