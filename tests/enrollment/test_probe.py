"""The enrollment URL probe against HTTPS servers on 127.0.0.1 that are up, down, slow,
failing and self-signed (with and without the anchor), and its hourly schedule."""

from __future__ import annotations

import base64
import ipaddress
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from adesync.enrollment import probe_profiles, probe_url
from adesync.store.database import Database
from adesync.store.tables_enrollment import enrollment_url_probes
from tests.enrollment.servers import (
    Certificates,
    closed_port_url,
    https_server,
    make_certificates,
    never,
    status,
)
from tests.health.factory import NOW, add_devices, add_profile, add_token


def anywhere(host: str, port: int, address: object) -> None:
    """These servers listen on 127.0.0.1, which the probe refuses by default."""


@pytest.fixture(scope="module")
def certs() -> Certificates:
    return make_certificates()


async def test_a_server_whose_issuer_is_an_anchor_is_up(certs: Certificates) -> None:
    async with https_server(certs.leaf, status(200)) as server:
        result = await probe_url(server.url, [certs.ca.der_base64], refusal=anywhere)
    assert (result.ok, result.status_code, result.error_kind) == (True, 200, None)
    assert server.requests[0].startswith(b"GET /mdm/enroll HTTP/1.1\r\n")
    assert b"user-agent: adesync/" in server.requests[0].lower()


async def test_without_the_anchor_the_same_server_is_not_trusted(certs: Certificates) -> None:
    async with https_server(certs.leaf, status(200)) as server:
        result = await probe_url(server.url, refusal=anywhere)
    assert (result.ok, result.error_kind) == (False, "tls")
    assert result.error == "The enrollment server's TLS certificate or handshake has a problem."
    assert result.detail is not None and result.detail.startswith("TLS certificate not trusted:")
    assert "issuer" in result.detail
    assert server.requests == []


async def test_a_self_signed_server_fails_without_its_certificate_as_anchor(
    certs: Certificates,
) -> None:
    async with https_server(certs.self_signed, status(200)) as server:
        refused = await probe_url(server.url, [certs.ca.der_base64], refusal=anywhere)
        trusted = await probe_url(server.url, [certs.self_signed.der_base64], refusal=anywhere)
    assert (refused.ok, refused.error_kind) == (False, "tls")
    assert refused.detail is not None and "self" in refused.detail and "signed" in refused.detail
    assert (trusted.ok, trusted.status_code) == (True, 200)


async def test_a_server_that_is_down_is_a_connection_failure() -> None:
    result = await probe_url(closed_port_url(), refusal=anywhere)
    assert (result.ok, result.error_kind) == (False, "connect")
    assert result.error == "The enrollment server is not reachable."
    assert result.detail == "Connection failed: Connection refused."


async def test_a_slow_server_times_out(certs: Certificates) -> None:
    async with https_server(certs.leaf, never()) as server:
        result = await probe_url(
            server.url, [certs.ca.der_base64], timeout_seconds=0.3, refusal=anywhere
        )
    assert (result.ok, result.error_kind, result.detail) == (
        False,
        "timeout",
        "No answer within 0.3 seconds.",
    )
    assert len(server.requests) == 1  # it connected and asked; no answer came


@pytest.mark.parametrize(("code", "ok"), [(500, False), (503, False), (404, True), (405, True)])
async def test_5xx_fails_and_other_answers_show_the_server_is_there(
    certs: Certificates, code: int, ok: bool
) -> None:
    async with https_server(certs.leaf, status(code)) as server:
        result = await probe_url(server.url, [certs.ca.der_base64], refusal=anywhere)
    assert (result.ok, result.status_code) == (ok, code)
    if not ok:
        assert (result.error_kind, result.detail) == (
            "http_5xx",
            f"The server answered HTTP {code}.",
        )


async def test_redirects_are_not_followed(certs: Certificates) -> None:
    async with (
        https_server(certs.leaf, status(500)) as elsewhere,
        https_server(certs.leaf, status(302, f"Location: {elsewhere.url}\r\n")) as server,
    ):
        result = await probe_url(server.url, [certs.ca.der_base64], refusal=anywhere)
    assert (result.ok, result.status_code) == (True, 302)
    assert elsewhere.requests == []


async def test_an_anchor_that_is_no_certificate_is_a_tls_failure() -> None:
    garbage = base64.b64encode(b"not a certificate").decode()
    result = await probe_url("https://127.0.0.1:9/x", [garbage], refusal=anywhere)
    assert (result.ok, result.error_kind) == (False, "tls")
    assert result.detail == "An anchor certificate of the profile is not a certificate."


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "not a url at all", "https://"])
async def test_what_is_no_web_url_is_said_so(url: str) -> None:
    result = await probe_url(url, refusal=anywhere)
    assert (result.ok, result.error_kind) == (False, "url")


async def probes(db: Database) -> dict[str, object]:
    async with db.read() as session:
        rows = await session.execute(select(enrollment_url_probes))
        return {row.url: row for row in rows}


async def test_profiles_in_use_are_probed_at_most_hourly(db: Database, certs: Certificates) -> None:
    token_id = await add_token(db)  # its default profile is PROFILE1
    async with (
        https_server(certs.leaf, status(200)) as up,
        https_server(certs.leaf, status(503)) as failing,
        https_server(certs.leaf, status(200)) as unused,
    ):
        anchors = json.dumps({"anchor_certs": [certs.ca.der_base64]})
        await add_profile(db, token_id, anchors, url=up.url)
        await add_profile(db, token_id, anchors, url=failing.url, profile_uuid="PROFILE2")
        await add_profile(db, token_id, anchors, url=unused.url, profile_uuid="PROFILE3")
        await add_devices(db, token_id, 2, profile_uuid="PROFILE2")

        first = await probe_profiles(db, now=NOW, refusal=anywhere)
        assert {url: r.ok for url, r in first.items()} == {up.url: True, failing.url: False}
        assert await probe_profiles(db, now=NOW + timedelta(minutes=59), refusal=anywhere) == {}
        later = await probe_profiles(db, now=NOW + timedelta(minutes=61), refusal=anywhere)
        assert set(later) == {up.url, failing.url}
        assert (len(up.requests), len(failing.requests), len(unused.requests)) == (2, 2, 0)

    stored = await probes(db)
    assert set(stored) == {up.url, failing.url}
    bad = stored[failing.url]
    assert (bad.ok, bad.status_code, bad.error_kind) == (False, 503, "http_5xx")  # type: ignore[attr-defined]
    # The failure run started at the first failed probe.
    assert bad.failing_since == NOW and bad.probed_at == NOW + timedelta(minutes=61)  # type: ignore[attr-defined]
    assert stored[up.url].failing_since is None  # type: ignore[attr-defined]


async def test_a_url_no_longer_in_use_is_forgotten(db: Database, certs: Certificates) -> None:
    token_id = await add_token(db)
    async with https_server(certs.leaf, status(200)) as up:
        await add_profile(db, token_id, "{}", url=up.url)
        await probe_profiles(db, now=NOW, refusal=anywhere)
        assert set(await probes(db)) == {up.url}
        from sqlalchemy import update

        from adesync.store.tables import tokens

        async with db.write() as session:
            await session.execute(update(tokens).values(default_profile_uuid=None))
        assert await probe_profiles(db, now=NOW + timedelta(hours=2), refusal=anywhere) == {}
    assert await probes(db) == {}


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:{port}/mdm/enroll",
        "https://localhost:{port}/mdm/enroll",
        "https://0x7f000001:{port}/mdm/enroll",
        "https://[::1]:{port}/mdm/enroll",
        "https://169.254.169.254/latest/meta-data",
    ],
)
async def test_loopback_and_link_local_addresses_are_not_probed(
    certs: Certificates, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with https_server(certs.leaf, status(200)) as server:
        port = server.url.split(":")[2].split("/")[0]
        result = await probe_url(url.format(port=port), [certs.ca.der_base64])
    assert (result.ok, result.error_kind) == (False, "refused")
    assert result.error == "The enrollment server is not reachable."
    assert result.detail is not None and "loopback or link-local" in result.detail
    assert server.requests == []


async def test_a_private_address_is_probed() -> None:
    """MDM servers are often on-premises: 10.0.0.0/8 and friends stay allowed."""
    from adesync.outbound import probe_refusal

    for address in ("10.1.2.3", "192.168.1.10", "172.16.0.5", "fd00::5"):
        assert probe_refusal("mdm.internal", 443, ipaddress.ip_address(address)) is None


async def test_a_name_is_connected_at_the_checked_address_and_verified_by_name(
    certs: Certificates,
) -> None:
    """The guard connects to the address it checked, and TLS still checks the certificate
    against the name in the URL (the leaf is for localhost and 127.0.0.1)."""
    async with https_server(certs.leaf, status(200)) as server:
        named = server.url.replace("127.0.0.1", "localhost")
        result = await probe_url(named, [certs.ca.der_base64], refusal=anywhere)
    assert (result.ok, result.status_code) == (True, 200), result.detail
    assert b"host: localhost:" in server.requests[0].lower()
