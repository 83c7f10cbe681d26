"""The outbound policy through the API: which Apple service URLs a token may name, the check of
every connection of such a token, and what an unexpected answer leaves out of the reply."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import update

from adesync.outbound import AllowedHosts
from adesync.services.token_errors import DepUrlNotAllowed
from adesync.services.token_model import check_dep_url
from adesync.store.tables import tokens
from adesync.web.roles import Role
from tests.enrollment.servers import Answer, https_server
from tests.sim_fixtures import RunningSimulator
from tests.web.conftest import Web
from tests.web.test_api import API, assert_problem

REFUSED = [
    "http://[::1]:9",
    "http://0x7f000001:9",
    "http://2130706433:9",
    "http://127.1:9",
    "http://localhost:9",
    "http://user:pw@127.0.0.1:9",
    "http://10.0.0.1",
    "http://169.254.169.254/latest",
    "https://mdmenrollment.apple.com.evil.example",
    "http://[::ffff:127.0.0.2]:9",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_the_api_refuses_internal_and_unlisted_apple_urls(web: Web, url: str) -> None:
    """The web fixture allows 127.0.0.1:* (the simulator): nothing else local gets through."""
    answer = await web.client.post(
        f"{API}/tokens", json={"name": "north", "dep_url": url}, headers=web.as_role(Role.ADMIN)
    )
    body = assert_problem(answer, 400, "dep_url_not_allowed")
    assert "pw" not in answer.text and body["detail"].startswith("The Apple service URL")


async def test_the_api_accepts_apple_and_allowed_hosts(web: Web) -> None:
    admin = web.as_role(Role.ADMIN)
    for name, url in (("apple", None), ("sim", "http://127.0.0.1:9")):
        answer = await web.client.post(
            f"{API}/tokens", json={"name": name, "dep_url": url}, headers=admin
        )
        assert answer.status_code == 201, answer.text


def test_by_default_only_apple_is_allowed_and_a_pattern_names_hosts() -> None:
    nothing = AllowedHosts.parse("")
    assert check_dep_url(None, policy=nothing) == "https://mdmenrollment.apple.com"
    assert check_dep_url("https://mdmenrollment.apple.com/", policy=nothing)
    for url in (
        "http://127.0.0.1:8080",
        "https://dep.example.com",
        "http://mdmenrollment.apple.com",
    ):
        with pytest.raises(DepUrlNotAllowed):
            check_dep_url(url, policy=nothing)
    # A wildcard allows public names, never an internal address it does not spell out.
    everywhere = AllowedHosts.parse("*:*, localhost:8443")
    assert check_dep_url("https://dep.example.com:8443", policy=everywhere)
    assert check_dep_url("https://localhost:8443", policy=everywhere)
    for url in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[fd00::1]:80"):
        with pytest.raises(DepUrlNotAllowed):
            check_dep_url(url, policy=everywhere)
    # The CLI's --dep-url (no policy) is the host administrator's own choice.
    assert check_dep_url("http://localhost:8080") == "http://localhost:8080"


async def _create(web: Web, sim: RunningSimulator, name: str, dep_url: str) -> bytes:
    created = await web.client.post(
        f"{API}/tokens", json={"name": name, "dep_url": dep_url}, headers=web.as_role(Role.ADMIN)
    )
    assert created.status_code == 201, created.text
    pem = created.json()["certificate"]["certificate_pem"]
    return sim.sim.create_server(name, certificate_pem=pem, devices=2).p7m


async def _upload(web: Web, name: str, p7m: bytes) -> httpx.Response:
    return await web.client.put(
        f"{API}/tokens/{name}/p7m",
        files={"p7m": ("token_smime.p7m", p7m, "application/pkcs7-mime")},
        headers=web.as_role(Role.ADMIN),
    )


async def test_each_connection_of_a_web_token_is_checked_where_the_name_resolves(
    web: Web, simulator: RunningSimulator
) -> None:
    """As if the name now resolved to a loopback address (DNS rebinding): the simulator at
    127.0.0.1 is allowed, but not reached through a name no pattern spells out."""
    port = simulator.base_url.rsplit(":", 1)[1]
    p7m = await _create(web, simulator, "north", simulator.base_url)
    async with web.db.write() as session:
        await session.execute(
            update(tokens)
            .where(tokens.c.name == "north")
            .values(dep_url=f"http://localhost:{port}")
        )
    refused = await _upload(web, "north", p7m)
    assert refused.status_code == 503, refused.text
    assert "adesync does not connect there" in refused.text
    # A token whose URL an administrator set (the CLI, or before the upgrade) keeps working.
    async with web.db.write() as session:
        await session.execute(
            update(tokens).where(tokens.c.name == "north").values(dep_url_checked=False)
        )
    accepted = await _upload(web, "north", p7m)
    assert accepted.status_code == 200, accepted.text


def _junk(body: bytes) -> Answer:
    async def answer(_request: bytes) -> bytes:
        head = f"HTTP/1.1 418 Teapot\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        return head.encode() + body

    return answer


async def test_an_unexpected_answer_is_logged_not_returned(
    web: Web, simulator: RunningSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    async with https_server(None, _junk(b"INTERNAL-ADMIN-PANEL token=s3cr3t")) as internal:
        base = internal.url.removesuffix("/mdm/enroll")
        p7m = await _create(web, simulator, "north", base)
        with caplog.at_level(logging.WARNING, logger="adesync.apple"):
            answer = await _upload(web, "north", p7m)
    assert answer.status_code in (422, 503), answer.text
    assert "INTERNAL-ADMIN-PANEL" not in answer.text
    assert "INTERNAL-ADMIN-PANEL" in caplog.text


async def test_a_web_tokens_syncs_are_checked_too(web: Web, simulator: RunningSimulator) -> None:
    port = simulator.base_url.rsplit(":", 1)[1]
    p7m = await _create(web, simulator, "north", simulator.base_url)
    assert (await _upload(web, "north", p7m)).status_code == 200
    operator = web.as_role(Role.OPERATOR)
    synced = await web.client.post(f"{API}/tokens/north/sync", headers=operator)
    assert synced.json()["outcome"] == "ok", synced.text
    async with web.db.write() as session:
        await session.execute(
            update(tokens)
            .where(tokens.c.name == "north")
            .values(dep_url=f"http://localhost:{port}", last_manual_sync_at=None)
        )
    refused = await web.client.post(f"{API}/tokens/north/sync", headers=operator)
    assert refused.json()["error_code"] == "apple_unavailable", refused.text
