"""Trusted proxies, the public URL, cookies and response headers, through a real server on a
loopback port configured as ``adesync serve`` configures uvicorn."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from adesync.runtime import open_runtime
from adesync.store.tables_web import login_failures
from adesync.web.app import create_app
from adesync.web.roles import Role
from tests.web.live import PASSWORD, install_home, run_on_thread, serving

FORGED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def failed_from(home: Path, **settings: Any) -> list[str]:
    """The addresses the failed sign-ins were counted for."""

    async def read() -> list[str]:
        from adesync.config import Settings

        async with open_runtime(Settings(home=home, **settings)) as rt, rt.db.read() as session:
            return list((await session.execute(select(login_failures.c.address))).scalars())

    return run_on_thread(read)


def fail_sign_in(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"username": "admin", "password": "wrong", "csrf_token": token},
        headers=headers,
    )


def test_forwarded_headers_are_believed_from_no_one_by_default(tmp_path: Path) -> None:
    installation = install_home(tmp_path / "home")
    with (
        serving(create_app(installation.settings), installation.settings) as url,
        httpx.Client(base_url=url) as client,
    ):
        answer = fail_sign_in(client, FORGED)
        assert answer.status_code == 401
        # Not even from 127.0.0.1: the address stays the connection's, the scheme http.
        cookie = answer.headers.get("set-cookie", "")
        assert "secure" not in cookie.lower()
        assert "strict-transport-security" not in answer.headers
    assert failed_from(tmp_path / "home") == ["127.0.0.1"]


def test_forwarded_headers_are_believed_from_the_proxies_named(tmp_path: Path) -> None:
    installation = install_home(tmp_path / "home", forwarded_allow_ips="127.0.0.1")
    with (
        serving(create_app(installation.settings), installation.settings) as url,
        httpx.Client(base_url=url) as client,
    ):
        assert fail_sign_in(client, FORGED).status_code == 401
    assert failed_from(tmp_path / "home") == ["203.0.113.9"]


def _cookies(answer: httpx.Response) -> dict[str, str]:
    """Each cookie the answer sets: name -> its whole Set-Cookie line."""
    return {
        line.split("=", 1)[0]: line
        for name, line in answer.headers.multi_items()
        if name == "set-cookie"
    }


def test_an_https_public_url_makes_cookies_secure_host_only_and_turns_on_hsts(
    tmp_path: Path,
) -> None:
    public = "https://adesync.example.com"
    installation = install_home(tmp_path / "home", public_url=public)
    with (
        serving(create_app(installation.settings), installation.settings) as url,
        httpx.Client(base_url=url) as client,
    ):
        page = client.get("/login")
        presession = _cookies(page)["__Host-adesync_presession"]
        assert "Secure" in presession and "Path=/" in presession and "Domain" not in presession
        assert page.headers["strict-transport-security"].startswith("max-age=")
        # The client talks plain HTTP to the loopback port, as a TLS proxy would: it sends
        # the Secure cookies back itself, with the public URL's origin.
        signed = client.post(
            "/login",
            data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
            headers={"Origin": public, "Cookie": presession.split(";")[0]},
        )
        assert signed.status_code == 303, signed.text
        session = _cookies(signed)["__Host-adesync_session"]
        assert "Secure" in session and "HttpOnly" in session and "SameSite=strict" in session
        tokens = client.get("/tokens", headers={"Cookie": session.split(";")[0]})
        assert tokens.status_code == 200 and "admin" in tokens.text
        # A cookie without the prefix (planted over plain HTTP, say) signs no one in.
        unprefixed = session.split(";")[0].removeprefix("__Host-")
        assert client.get("/tokens", headers={"Cookie": unprefixed}).status_code == 303


def test_authenticated_answers_are_not_stored_and_keep_the_security_headers(
    tmp_path: Path,
) -> None:
    installation = install_home(tmp_path / "home")
    viewer = {"Authorization": f"Bearer {installation.keys[Role.VIEWER]}"}
    with (
        serving(create_app(installation.settings), installation.settings) as url,
        httpx.Client(base_url=url) as client,
    ):
        token = csrf_of(client.get("/login").text)
        client.post("/login", data={"username": "bob", "password": PASSWORD, "csrf_token": token})
        answers = [client.get("/tokens"), client.get("/api/v1/tokens", headers=viewer)]
        for answer in answers:
            assert answer.status_code == 200
            assert answer.headers["cache-control"] == "no-store"
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
            assert "strict-transport-security" not in answer.headers  # not served over HTTPS
        static = client.get("/static/app.css")
        assert static.status_code == 200 and "cache-control" not in static.headers
