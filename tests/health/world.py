"""The world of the simulator scenarios: the simulator of Apple's service on a loopback port,
an installation, and the CLI as an admin runs it (the ``world`` fixture, in conftest.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adesync.simulator import Simulator, run_in_thread
from adesync.store.database import Database
from adesync.store.types import utcnow
from tests.cli_runner import Result, invoke
from tests.conftest import Home
from tests.health.factory import beat

PROFILE = {"profile_name": "Staff", "url": "https://mdm.example.org/enroll"}


@dataclass
class World:
    """The simulator, the installation and the CLI, for one test."""

    sim: Simulator
    base_url: str
    home: Home
    tmp: Path
    capsys: pytest.CaptureFixture[str]
    shift: list[float]
    servers: dict[str, str] = field(default_factory=dict)

    # -- running things -------------------------------------------------------------------

    def cli(self, *args: str) -> Result:
        result = invoke(self.capsys, *args)
        assert "Traceback" not in result.err, result.err
        return result

    def db(self, work: Callable[[Database], Coroutine[Any, Any, Any]]) -> Any:
        async def go() -> Any:
            database = Database(self.home.db_url)
            try:
                return await work(database)
            finally:
                await database.dispose()

        return asyncio.run(go())

    def tick(self, seconds: float) -> None:
        """Move Apple's (the simulator's) clock on, as time passing would."""
        self.shift[0] += seconds

    # -- the admin's steps ------------------------------------------------------------------

    def keypair(self, name: str, *extra: str) -> str:
        path = self.tmp / f"{name}-{len(list(self.tmp.iterdir()))}.pem"
        made = self.cli("tokens", "keypair", name, "--out", str(path), *extra)
        assert made.code == 0, made.err
        return path.read_text()

    def p7m(self, data: bytes | None) -> str:
        assert data is not None
        path = self.tmp / f"token-{len(list(self.tmp.iterdir()))}.p7m"
        path.write_bytes(data)
        return str(path)

    def add(self, name: str = "lab", devices: int = 12, **server: Any) -> str:
        """Key pair, MDM server in "ABM", token added; returns the server's UUID."""
        certificate = self.keypair(name)
        download = self.sim.create_server(
            f"{name} MDM", certificate_pem=certificate, devices=devices, **server
        )
        added = self.cli(
            "tokens", "add", name, "--p7m", self.p7m(download.p7m), "--dep-url", self.base_url
        )
        assert added.code == 0, added.err
        self.servers[name] = download.server_uuid
        return download.server_uuid

    def renew(self, name: str, *extra: str, certificate: str | None = None) -> None:
        certificate = certificate or self.keypair(name)
        download = self.sim.download_token(self.servers[name], certificate_pem=certificate)
        renewed = self.cli("tokens", "renew", name, "--p7m", self.p7m(download.p7m), *extra)
        assert renewed.code == 0, renewed.err

    def sync(self, name: str = "lab") -> dict[str, Any]:
        result = self.cli("sync", name, "--force", "--json")
        (report,) = json.loads(result.out)
        return dict(report)

    def define_default(self, name: str = "lab", **changes: Any) -> Result:
        path = self.tmp / f"profile-{len(list(self.tmp.iterdir()))}.json"
        path.write_text(json.dumps({**PROFILE, **changes}))
        return self.cli("profiles", "define", "--token", name, "--file", str(path), "--default")

    def healthy_token(self, name: str = "lab", **server: Any) -> str:
        """A token with nothing wrong: added, synced, a default profile, a live scheduler."""
        server_uuid = self.add(name, **server)
        assert self.sync(name)["outcome"] == "ok"
        defined = self.define_default(name)
        assert defined.code == 0, defined.err
        self.heartbeat()
        return server_uuid

    def heartbeat(self) -> None:
        self.db(lambda db: beat(db, utcnow(), worker=f"w-{time.monotonic_ns()}"))

    # -- what diagnose says -----------------------------------------------------------------

    def diagnose(self, *args: str) -> tuple[int, dict[str, Any]]:
        result = self.cli("diagnose", "--json", *args)
        assert result.err == "", result.err
        return result.code, json.loads(result.out)

    def findings(self, name: str = "lab") -> dict[str, dict[str, Any]]:
        _, report = self.diagnose("--token", name)
        return {f["code"]: f for f in report["findings"]}

    def expect(self, code: str, severity: str, exit_code: int, name: str = "lab") -> dict[str, Any]:
        status, report = self.diagnose("--token", name)
        found = {f["code"]: f for f in report["findings"]}
        assert code in found, (code, report["findings"])
        assert found[code]["severity"] == severity
        assert status == exit_code
        if severity == "error":
            assert report["alert"]["affected_tokens"][0]["name"] == name
        return found[code]

    def expect_healthy(self, name: str = "lab", *, besides: tuple[str, ...] = ()) -> None:
        """No finding left (but the info findings named in ``besides``), exit code 0."""
        status, report = self.diagnose("--token", name)
        left = [f for f in report["findings"] if f["code"] not in besides]
        assert (status, report["status"], left) == (0, "healthy", [])
        assert report["alert"] is None


@pytest.fixture
def world(home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[World]:
    shift = [0.0]
    sim = Simulator(devices=12, seed=7, clock=lambda: time.time() + shift[0])
    base_url, stop = run_in_thread(sim)
    files = tmp_path / "files"
    files.mkdir()
    try:
        yield World(sim, base_url, home, files, capsys, shift)
    finally:
        stop()
