# ruff: noqa: F811  (the world fixture is imported, and named as tests take it)
"""The verdict follows the fix, through every door: the CLI, the API and the console's forms.

Each finding an admin can fix is produced for real through the simulator (over loopback HTTP),
fixed through one door, and the *stored* verdict (the token's state and its stored findings,
which listings, the console and notifications read) must be right the moment the fix
returns, with no other error finding left behind. A change Apple refuses must leave the
affected rows byte for byte as they were. The API and the console are a real ``adesync`` web
app on a loopback port over the same installation (SQLite and PostgreSQL).
"""

from __future__ import annotations

import html
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select, update

from adesync.config import load_settings
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_health import findings
from adesync.store.tables_sync import profiles, sync_runs
from adesync.store.types import utcnow
from adesync.web import accounts
from adesync.web.app import create_app
from adesync.web.roles import Role
from tests.health.world import World, world  # noqa: F401  (pytest fixture)

PASSWORD = "correct horse battery staple"
DOORS = ["cli", "api", "console"]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    text: str


class CliDoor:
    def __init__(self, world: World) -> None:
        self.world = world

    def _run(self, *args: str) -> Outcome:
        result = self.world.cli(*args)
        return Outcome(result.code == 0, result.out + result.err)

    def renew(self, name: str, p7m: bytes, *, force: bool = False) -> Outcome:
        extra = ("--force",) if force else ()
        return self._run("tokens", "renew", name, "--p7m", self.world.p7m(p7m), *extra)

    def check(self, name: str) -> Outcome:
        return self._run("tokens", "check", name)

    def set_default(self, name: str, profile_uuid: str) -> Outcome:
        return self._run("profiles", "set-default", "--token", name, "--profile", profile_uuid)


class ApiDoor:
    def __init__(self, client: httpx.Client, key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    @staticmethod
    def _outcome(answer: httpx.Response) -> Outcome:
        return Outcome(answer.status_code < 300, answer.text)

    def renew(self, name: str, p7m: bytes, *, force: bool = False) -> Outcome:
        return self._outcome(
            self.client.put(
                f"/api/v1/tokens/{name}/p7m",
                files={"p7m": ("token_smime.p7m", p7m, "application/pkcs7-mime")},
                data={"force": "true" if force else "false"},
                headers=self.headers,
            )
        )

    def check(self, name: str) -> Outcome:
        answer = self.client.post(f"/api/v1/tokens/{name}/check", headers=self.headers)
        return Outcome(answer.status_code == 200 and answer.json()["ok"], answer.text)

    def set_default(self, name: str, profile_uuid: str) -> Outcome:
        return self._outcome(
            self.client.put(
                f"/api/v1/tokens/{name}/default-profile",
                json={"profile_uuid": profile_uuid},
                headers=self.headers,
            )
        )


class ConsoleDoor:
    """The console's forms over HTTP, as a signed-in admin; the outcome is the flash message
    on the page the form redirects to."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        page = client.get("/login")
        answer = client.post(
            "/login",
            data={"username": "admin", "password": PASSWORD, "csrf_token": _csrf(page.text)},
        )
        assert answer.status_code == 303, answer.text

    def _post(self, name: str, action: str, **form: Any) -> Outcome:
        csrf = _csrf(self.client.get(f"/tokens/{name}").text)
        files = form.pop("files", None)
        answer = self.client.post(
            f"/tokens/{name}/{action}", data={"csrf_token": csrf, **form}, files=files
        )
        assert answer.status_code == 303, answer.text
        page = self.client.get(answer.headers["location"]).text
        flash = re.search(r'<div class="flash (\w+)"[^>]*>(.*?)</div>', page, re.S)
        assert flash, "the console showed no message"
        return Outcome(flash.group(1) == "ok", html.unescape(flash.group(2)))

    def renew(self, name: str, p7m: bytes, *, force: bool = False) -> Outcome:
        extra = {"force": "on"} if force else {}
        return self._post(name, "p7m", files={"p7m": ("token_smime.p7m", p7m)}, **extra)

    def check(self, name: str) -> Outcome:
        return self._post(name, "check")

    def set_default(self, name: str, profile_uuid: str) -> Outcome:
        return self._post(name, "default-profile", profile_uuid=profile_uuid)


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert match, "the page has no CSRF token"
    return match.group(1)


@pytest.fixture
def served(world: World) -> Iterator[str]:
    """``adesync serve``'s app on a loopback port over the world's installation."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(load_settings()), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    ready = threading.Event()
    while not server.started and thread.is_alive():
        ready.wait(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(params=DOORS)
def door(request: pytest.FixtureRequest, world: World) -> Iterator[CliDoor | ApiDoor | ConsoleDoor]:
    if request.param == "cli":
        yield CliDoor(world)
        return
    base_url = request.getfixturevalue("served")

    async def people(db: Database) -> str:
        await accounts.add_user(db, "admin", Role.ADMIN, actor="test", password=PASSWORD)
        _, key = await accounts.create_api_key(db, "matrix", Role.ADMIN, actor="test")
        return key

    key = world.db(people)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield ApiDoor(client, key) if request.param == "api" else ConsoleDoor(client)


# -- the stored verdict ------------------------------------------------------------------------


def verdict(world: World, name: str = "lab") -> tuple[str | None, set[str]]:
    """The token's stored state and the codes of its stored error findings (no rule is run)."""

    async def read(db: Database) -> tuple[str | None, set[str]]:
        async with db.read() as session:
            token_id, state = (
                await session.execute(
                    select(tokens.c.id, tokens.c.state).where(tokens.c.name == name)
                )
            ).one()
            codes = (
                await session.execute(
                    select(findings.c.code).where(
                        findings.c.token_id == token_id, findings.c.severity == "error"
                    )
                )
            ).scalars()
            return state, set(codes)

    result: tuple[str | None, set[str]] = world.db(read)
    return result


def fixed(world: World, name: str = "lab", *, credentials: bool = True) -> None:
    """Right after the fix: no stored error finding; after a fix of the credentials a plain
    sync (no --force) runs at once, the failed attempt's allowance given back."""
    state, errors = verdict(world, name)
    assert errors == set() and state != "error", (state, errors)
    if not credentials:
        return
    result = world.cli("sync", name, "--json")
    (report,) = json.loads(result.out)
    assert report["outcome"] == "ok", report


def snapshot(world: World, name: str = "lab") -> Any:
    """The token's row and its profiles, byte for byte."""

    async def read(db: Database) -> Any:
        async with db.read() as session:
            row = (await session.execute(select(tokens).where(tokens.c.name == name))).one()
            defined = (
                await session.execute(
                    select(profiles).where(profiles.c.token_id == row.id).order_by(profiles.c.id)
                )
            ).all()
            return tuple(row), [tuple(r) for r in defined]

    return world.db(read)


# -- the matrix ----------------------------------------------------------------------------


def test_revoked_token_renewed(world: World, door: Any) -> None:
    server_uuid = world.healthy_token()
    world.sim.revoke_token(server_uuid)
    world.sim.expire_sessions()
    assert world.sync()["error_code"] == "token_rejected"
    assert verdict(world) == ("error", {"token_rejected"})
    download = world.sim.download_token(server_uuid, certificate_pem=world.keypair("lab"))
    assert door.renew("lab", download.p7m).ok
    fixed(world)


def test_expired_token_renewed(world: World, door: Any) -> None:
    server_uuid = world.healthy_token()

    async def expire(db: Database) -> None:
        async with db.write() as session:
            await session.execute(
                update(tokens).values(access_token_expiry=utcnow() - timedelta(hours=1))
            )

    world.db(expire)
    world.sim.revoke_token(server_uuid)  # Apple refuses an expired token too
    world.sim.expire_sessions()
    world.sync()
    state, errors = verdict(world)
    # One cause per fault: the expiry, not a rejection besides it.
    assert state == "error" and "token_expired" in errors
    download = world.sim.download_token(server_uuid, certificate_pem=world.keypair("lab"))
    assert door.renew("lab", download.p7m).ok
    fixed(world)


def test_terms_accepted_then_checked(world: World, door: Any) -> None:
    server_uuid = world.healthy_token()
    org_id = world.sim.server(server_uuid).org.org_id
    world.sim.set_terms_pending(org_id)
    assert world.sync()["error_code"] == "terms_not_accepted"
    assert verdict(world) == ("error", {"terms_not_accepted"})
    assert not door.check("lab").ok  # still pending: the check confirms it
    assert verdict(world) == ("error", {"terms_not_accepted"})
    world.sim.set_terms_pending(org_id, False)
    assert door.check("lab").ok
    fixed(world)


def test_deleted_server_replaced(world: World, door: Any) -> None:
    server_uuid = world.healthy_token()
    world.sim.delete_server(server_uuid)
    world.sim.expire_sessions()
    assert world.sync()["error_code"] == "access_denied"
    assert verdict(world) == ("error", {"access_denied"})
    download = world.sim.create_server("lab MDM 2", certificate_pem=world.keypair("lab"), devices=0)
    assert not door.renew("lab", download.p7m).ok  # another server: refused unless forced
    assert door.renew("lab", download.p7m, force=True).ok
    fixed(world)


def test_missing_profile_replaced_by_a_valid_default(world: World, door: Any) -> None:
    server_uuid = world.healthy_token()
    world.sim.add_devices(server_uuid, 2)
    world.sim.set_faults(scripts={"assign_profile": [{"response": "not_found"}]})
    world.sync()
    assert verdict(world) == ("error", {"profile_not_found"})
    world.sim.clear_faults()
    (default,) = [p for p in json.loads(world.cli("profiles", "list", "--json").out)]
    assert door.set_default("lab", default["profile_uuid"]).ok
    fixed(world, credentials=False)


def test_a_default_apple_does_not_know_changes_nothing(world: World, door: Any) -> None:
    world.healthy_token()
    before = snapshot(world)
    refused = door.set_default("lab", "NOPE")
    assert not refused.ok and "NOPE" in refused.text
    assert "adesync " not in refused.text or isinstance(door, CliDoor)
    assert snapshot(world) == before
    assert verdict(world)[1] == set()


def test_a_renewal_for_another_server_changes_nothing(world: World, door: Any) -> None:
    world.healthy_token()
    other = world.sim.create_server("other MDM", certificate_pem=world.keypair("lab"), devices=0)
    before = snapshot(world)
    refused = door.renew("lab", other.p7m)
    assert not refused.ok
    if isinstance(door, CliDoor):
        assert "--force" in refused.text
    else:  # the web names its own field or checkbox, never a shell command
        assert "--force" not in refused.text and "adesync " not in refused.text
    assert snapshot(world) == before


def test_a_check_never_uses_the_manual_sync_allowance(world: World, door: Any) -> None:
    world.healthy_token()

    async def allowance(db: Database) -> Any:
        async with db.read() as session:
            return (await session.execute(select(tokens.c.last_manual_sync_at))).scalar_one()

    before = world.db(allowance)
    assert door.check("lab").ok
    assert world.db(allowance) == before


def test_a_manual_sync_inside_apples_retry_after_is_skipped(world: World) -> None:
    world.healthy_token()
    world.sim.set_faults(throttle={"status": 429, "retry_after": 3600})
    assert world.sync()["error_code"] == "apple_throttled"
    world.sim.clear_faults()
    result = world.cli("sync", "lab", "--json")
    (report,) = json.loads(result.out)
    assert (report["outcome"], report["error_code"]) == ("skipped", "apple_throttled")
    assert report["next_allowed_at"] is not None
    assert result.code == 0


def test_a_profile_is_removed_through_the_cli_and_the_api(world: World, served: str) -> None:
    server_uuid = world.healthy_token()
    devices = json.loads(world.cli("devices", "list", "--token", "lab", "--json").out)
    first, second = sorted(d["serial_number"] for d in devices)[:2]
    listed = world.tmp / "serials.txt"
    listed.write_text(f"{first}\nNOT-A-SERIAL\n")
    removed = world.cli("profiles", "remove", "--token", "lab", "--serials", str(listed))
    assert removed.code == 0 and "1 of 2" in removed.out and "NOT-A-SERIAL" in removed.out

    async def key(db: Database) -> str:
        _, text = await accounts.create_api_key(db, "operator", Role.OPERATOR, actor="test")
        return text

    answer = httpx.post(
        f"{served}/api/v1/tokens/lab/profiles/remove",
        json={"serials": [second]},
        headers={"Authorization": f"Bearer {world.db(key)}"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"requested": 1, "removed": 1, "devices": {second: "SUCCESS"}}
    for serial in (first, second):
        assert world.sim.device(server_uuid, serial)["profile_status"] == "removed"


def test_sync_now_during_a_run_answers_with_that_run(world: World, served: str) -> None:
    """One run per token, in one process too: a second "sync now" while the first runs is
    not a second run; the API answers 202 with the run under way."""
    world.healthy_token()

    async def key(db: Database) -> str:
        _, text = await accounts.create_api_key(db, "operator", Role.OPERATOR, actor="test")
        return text

    headers = {"Authorization": f"Bearer {world.db(key)}"}

    async def allowance_whole(db: Database) -> None:
        async with db.write() as session:
            await session.execute(update(tokens).values(last_manual_sync_at=None))

    world.db(allowance_whole)

    async def running(db: Database) -> list[int]:
        async with db.read() as session:
            found = await session.execute(
                select(sync_runs.c.id).where(sync_runs.c.outcome == "running")
            )
            return [int(i) for i in found.scalars()]

    world.sim.set_faults(delay_ms=1500)  # the first run stays under way a while
    first: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: first.append(
            httpx.post(f"{served}/api/v1/tokens/lab/sync", headers=headers, timeout=60)
        )
    )
    thread.start()
    try:
        under_way: list[int] = []
        for _ in range(500):
            under_way = world.db(running)
            if under_way:
                break
            threading.Event().wait(0.01)
        assert len(under_way) == 1
        second = httpx.post(f"{served}/api/v1/tokens/lab/sync", headers=headers, timeout=60)
        assert second.status_code == 202, second.text
        assert second.json() == {"token": "lab", "outcome": "running", "run_id": under_way[0]}
    finally:
        thread.join(timeout=60)
        world.sim.clear_faults()
    assert first[0].status_code == 200 and first[0].json()["run_id"] == under_way[0]
    assert world.db(running) == []
