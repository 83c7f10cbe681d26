"""CSRF against a real server (uvicorn on a loopback port): a page on another port of the same
host can plant cookies (cookies ignore ports) and get a token from /login, yet neither makes
a change; the form token is the session's own, issued by the server and new at each sign-in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from adesync.web.app import create_app
from adesync.web.roles import Role
from tests.web.live import PASSWORD, Installation, install_home, serving

EVIL = "http://127.0.0.1:1"  # another port of the same host: same site, another origin


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Installation]]:
    installation = install_home(tmp_path / "home")
    with serving(create_app(installation.settings), installation.settings) as url:
        yield url, installation


@contextmanager
def signed_in(url: str) -> Iterator[tuple[httpx.Client, str]]:
    """A client signed in as the admin, and the token its pages carry."""
    with httpx.Client(base_url=url, timeout=30) as client:
        before = csrf_of(client.get("/login").text)
        answer = client.post(
            "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": before}
        )
        assert answer.status_code == 303, answer.text
        after = csrf_of(client.get("/tokens").text)
        assert after != before  # the sign-in form's secret is not the session's
        yield client, after


def north_exists(url: str, installation: Installation) -> bool:
    admin = {"Authorization": f"Bearer {installation.keys[Role.ADMIN]}"}
    return httpx.get(f"{url}/api/v1/tokens/north", headers=admin).status_code == 200


def test_a_planted_cookie_and_its_token_from_another_port_delete_nothing(
    site: tuple[str, Installation],
) -> None:
    url, installation = site
    from_evil = {"Origin": EVIL, "Sec-Fetch-Site": "same-site"}
    with signed_in(url) as (victim, own_token):
        # The attacker's page fetches /login for a cookie and its token; plants the cookie.
        with httpx.Client(base_url=url) as attacker:
            derived = csrf_of(attacker.get("/login").text)
            for name, value in attacker.cookies.items():
                victim.cookies.set(name, value, domain="127.0.0.1")
        # As a browser sends it: refused by origin before any route runs.
        sent = victim.post(
            "/tokens/north/delete",
            data={"csrf_token": derived, "confirm": "north"},
            headers=from_evil,
        )
        assert sent.status_code == 403 and "another site" in sent.text
        # Even without the origin headers the derived token is no token of this session.
        bare = victim.post("/tokens/north/delete", data={"csrf_token": derived, "confirm": "north"})
        assert bare.status_code == 403
        # Nor does the session's own token pass from another origin (an older browser sends
        # Origin only), on the console or on the API with the session cookie.
        older = victim.post(
            "/tokens/north/delete",
            data={"csrf_token": own_token, "confirm": "north"},
            headers={"Origin": EVIL},
        )
        assert older.status_code == 403
        api = victim.delete(
            "/api/v1/tokens/north", headers={"X-CSRF-Token": own_token, "Origin": EVIL}
        )
        assert api.status_code == 403 and api.json()["code"] == "cross_origin"
        assert north_exists(url, installation)
        # The admin's own page, from its own origin, does it.
        own = victim.post(
            "/tokens/north/delete",
            data={"csrf_token": own_token, "confirm": "north"},
            headers={"Origin": url, "Sec-Fetch-Site": "same-origin"},
        )
        assert own.status_code == 303, own.text
    assert not north_exists(url, installation)


def test_the_token_changes_at_each_sign_in_and_ends_with_the_session(
    site: tuple[str, Installation],
) -> None:
    url, _ = site
    with signed_in(url) as (first, first_token), signed_in(url) as (second, second_token):
        assert first_token != second_token
        # One session's token is no good in another session.
        crossed = second.post("/lang", data={"csrf_token": first_token, "lang": "en"})
        assert crossed.status_code == 403
        assert first.post("/logout", data={"csrf_token": first_token}).status_code == 303
        # Signed out, the old token is refused (the sign-in form has a new one).
        assert first.post("/lang", data={"csrf_token": first_token}).status_code == 403


def test_api_keys_are_not_held_to_the_origin_check(site: tuple[str, Installation]) -> None:
    url, installation = site
    admin = {"Authorization": f"Bearer {installation.keys[Role.ADMIN]}", "Origin": EVIL}
    answer = httpx.delete(f"{url}/api/v1/tokens/north", headers=admin)
    assert answer.status_code == 204, answer.text
