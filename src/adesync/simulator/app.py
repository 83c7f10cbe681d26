"""``create_app``: the ASGI application of a :class:`~adesync.simulator.state.Simulator`."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from adesync.simulator.admin import admin_routes
from adesync.simulator.service import AppleService
from adesync.simulator.state import Simulator

__all__ = ["SimulatorApp", "create_app"]


class SimulatorApp:
    """Apple's paths go straight to the service (the hot path); ``/_sim`` to the admin API."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.service = AppleService(sim)
        self.admin = Starlette(routes=[Mount("/_sim", routes=admin_routes(sim))])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_sim/"):
            await self.service(scope, receive, send)
        else:
            await self.admin(scope, receive, send)


def create_app(sim: Simulator) -> SimulatorApp:
    """The ASGI app serving ``sim``: use it with uvicorn or ``httpx.ASGITransport``."""
    return SimulatorApp(sim)
