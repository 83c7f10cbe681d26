"""An app per test on each backend, an HTTP client for it, and API keys of every role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from adesync.config import Settings
from adesync.store.database import Database
from adesync.store.keycheck import adopt_key
from adesync.store.secrets import SecretBox
from adesync.web import accounts
from adesync.web.app import create_app
from adesync.web.roles import KEY_ROLES, Role
from tests.sim_fixtures import sim_keypair, simulator  # noqa: F401  (pytest fixtures)

PASSWORD = "correct horse battery staple"


@dataclass
class Web:
    app: FastAPI
    client: httpx.AsyncClient
    db: Database
    box: SecretBox
    keys: dict[Role, str]

    def as_role(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@pytest.fixture
async def web(db: Database, box: SecretBox, tmp_path: Path) -> AsyncIterator[Web]:
    await adopt_key(db, box)
    # The simulator listens on a loopback port: allowed as the host administrator would.
    settings = Settings(home=tmp_path / "home", allowed_dep_hosts="127.0.0.1:*")
    app = create_app(settings, db=db, box=box)
    keys = {}
    for role in KEY_ROLES:
        _, text = await accounts.create_api_key(db, f"key-{role.value}", role, actor="test")
        keys[role] = text
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client,
    ):
        yield Web(app=app, client=client, db=db, box=box, keys=keys)
