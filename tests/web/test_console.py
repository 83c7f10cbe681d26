"""The console over HTTP: sign-in, sessions, CSRF, rate limiting, pages, banner, language."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import event, update

from adesync.store.tables import tokens
from adesync.store.types import utcnow
from adesync.web import accounts
from adesync.web.roles import Role
from tests.sim_fixtures import RunningSimulator
from tests.web.conftest import PASSWORD, Web
from tests.web.test_api import add_token


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


async def sign_in(web: Web, name: str = "alice", role: Role = Role.ADMIN) -> str:
    """Create the user, sign in through the form; returns a CSRF token for later forms."""
    await accounts.add_user(web.db, name, role, actor="test", password=PASSWORD)
    page = await web.client.get("/login")
    answer = await web.client.post(
        "/login",
        data={"username": name, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
    )
    assert answer.status_code == 303, answer.text
    return csrf_of((await web.client.get("/tokens")).text)


async def test_pages_need_a_session(web: Web) -> None:
    for path in ("/tokens", "/tokens/x", "/devices", "/profiles", "/health", "/audit"):
        answer = await web.client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"


async def test_sign_in_sets_a_strict_httponly_cookie_and_sign_out_ends_it(web: Web) -> None:
    await accounts.add_user(web.db, "alice", Role.VIEWER, actor="test", password=PASSWORD)
    page = await web.client.get("/login")
    answer = await web.client.post(
        "/login",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "/devices",
        },
    )
    assert answer.headers["location"] == "/devices"
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie")
    assert cookie.startswith("adesync_session=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    stolen = web.client.cookies.get("adesync_session")
    tokens_page = await web.client.get("/tokens")
    assert tokens_page.status_code == 200 and "alice" in tokens_page.text
    # A viewer sees no admin forms.
    assert 'action="/tokens"' not in tokens_page.text
    await web.client.post("/logout", data={"csrf_token": csrf_of(tokens_page.text)})
    assert (await web.client.get("/tokens")).status_code == 303
    # The old cookie no longer works either: the session is gone from the database.
    web.client.cookies.set("adesync_session", stolen or "")
    replay = await web.client.get("/tokens")
    assert replay.status_code == 303


async def test_open_redirects_are_refused(web: Web) -> None:
    await accounts.add_user(web.db, "alice", Role.VIEWER, actor="test", password=PASSWORD)
    page = await web.client.get("/login")
    answer = await web.client.post(
        "/login",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "//evil.example/x",
        },
    )
    assert answer.headers["location"] == "/tokens"


async def test_a_token_created_in_the_console_has_the_type_and_url_given(web: Web) -> None:
    token = await sign_in(web)
    answer = await web.client.post(
        "/tokens",
        data={
            "name": "school",
            "token_type": "asm",
            "dep_url": "http://127.0.0.1:9/",
            "csrf_token": token,
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/tokens/school"
    admin = web.as_role(Role.ADMIN)
    stored = (await web.client.get("/api/v1/tokens/school", headers=admin)).json()
    assert stored["token_type"] == "asm" and stored["dep_url"] == "http://127.0.0.1:9"
    # A wrong type or URL: one message, nothing created.
    for field, value in (("token_type", "dep"), ("dep_url", "ftp://x")):
        refused = await web.client.post(
            "/tokens", data={"name": "other", field: value, "csrf_token": token}
        )
        assert refused.status_code == 303 and refused.headers["location"] == "/tokens"
        assert (await web.client.get("/api/v1/tokens/other", headers=admin)).status_code == 404


async def test_forms_without_the_csrf_token_change_nothing(web: Web) -> None:
    await sign_in(web)
    answer = await web.client.post("/tokens", data={"name": "sneaky", "token_type": "abm"})
    assert answer.status_code == 403
    wrong = await web.client.post("/tokens", data={"name": "sneaky", "csrf_token": "0" * 40})
    assert wrong.status_code == 403
    listing = await web.client.get("/api/v1/tokens?all=true", headers=web.as_role(Role.ADMIN))
    assert listing.json()["items"] == []
    # The API refuses cookie-authenticated changes without the header, too.
    api = await web.client.post("/api/v1/tokens", json={"name": "sneaky"})
    assert api.status_code == 403 and api.json()["code"] == "csrf_failed"
    login_without = await web.client.post("/login", data={"username": "a", "password": "b"})
    assert login_without.status_code == 403


async def test_sign_in_is_slowed_after_five_failures_never_refused(web: Web) -> None:
    await accounts.add_user(web.db, "alice", Role.VIEWER, actor="test", password=PASSWORD)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    web.app.state.web.limiter.sleep = sleep
    token = csrf_of((await web.client.get("/login")).text)
    for _ in range(6):
        failed = await web.client.post(
            "/login", data={"username": "alice", "password": "wrong", "csrf_token": token}
        )
        assert failed.status_code == 401
        assert "wrong" in failed.text.lower()
    assert waits == [2]
    slowed = await web.client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert slowed.status_code == 303 and waits == [2, 4]


async def test_token_pages_show_state_alert_and_actions(
    web: Web, simulator: RunningSimulator
) -> None:
    await add_token(web, simulator, "acme", devices=4)
    await add_token(web, simulator, "beta", devices=2)
    async with web.db.write() as session:
        await session.execute(
            update(tokens)
            .where(tokens.c.name == "beta")
            .values(state="error", state_reason="terms_not_accepted")
        )
    csrf = await sign_in(web)
    page = (await web.client.get("/tokens")).text
    assert 'id="token-alert"' in page
    assert 'href="/tokens/beta#findings"' in page and "terms and conditions not accepted" in page
    assert "Example Organisation" in page and "days left" in page
    assert "<svg" in page  # the days-to-expiry chart
    token_page = await web.client.get("/tokens/acme")
    assert token_page.status_code == 200
    for action in ("/sync", "/check", "/p7m", "/certificate.pem"):
        assert f"/tokens/acme{action}" in token_page.text
    synced = await web.client.post("/tokens/acme/sync", data={"csrf_token": csrf})
    assert synced.status_code == 303
    after = (await web.client.get("/tokens/acme")).text
    assert "Synced: 4 added" in after
    throttled = await web.client.post("/tokens/acme/sync", data={"csrf_token": csrf})
    assert "less than 15 minutes" in (await web.client.get(throttled.headers["location"])).text
    assert (await web.client.get("/tokens/acme/certificate.pem")).text.startswith("-----BEGIN")
    devices = await web.client.get("/devices?token=acme")
    assert devices.status_code == 200 and devices.text.count("/tokens/acme/devices/") == 4
    assert (await web.client.get("/health")).status_code == 200
    audit = await web.client.get("/audit")
    assert "token.sync" in audit.text
    assert (await web.client.get("/tokens/ghost")).status_code == 404


async def test_profile_form_shows_field_errors_inline(
    web: Web, simulator: RunningSimulator
) -> None:
    await add_token(web, simulator, "acme", devices=2)
    csrf = await sign_in(web)
    answer = await web.client.post(
        "/profiles",
        data={
            "csrf_token": csrf,
            "token": "acme",
            "profile_name": "x" * 130,
            "url": "https://mdm.example.com/enroll",
        },
    )
    assert answer.status_code == 422
    assert 'aria-invalid="true"' in answer.text and 'id="p-profile_name-error"' in answer.text
    ok = await web.client.post(
        "/profiles",
        data={
            "csrf_token": csrf,
            "token": "acme",
            "profile_name": "Staff",
            "url": "https://mdm.example.com/enroll",
            "default": "on",
        },
    )
    assert ok.status_code == 303, re.findall(r"role=\"alert\"[^>]*>([^<]*)", ok.text)
    listing = (await web.client.get("/profiles")).text
    assert "Staff" in listing


async def test_language_switch_to_simplified_chinese(web: Web) -> None:
    csrf = await sign_in(web, role=Role.VIEWER)
    answer = await web.client.post(
        "/lang", data={"csrf_token": csrf, "lang": "zh-CN", "next": "/tokens"}
    )
    assert answer.status_code == 303
    page = (await web.client.get("/tokens")).text
    assert '<html lang="zh-CN">' in page and "设备注册计划令牌" in page
    help_page = (await web.client.get("/help/findings")).text
    assert 'id="token_expired"' in help_page


def test_both_catalogues_have_the_same_keys_and_placeholders() -> None:
    from adesync.web.i18n import load_catalogues

    messages = load_catalogues().messages
    assert set(messages["en"]) == set(messages["zh-CN"])
    for key, text in messages["en"].items():
        assert set(re.findall(r"{(\w+)}", text)) == set(
            re.findall(r"{(\w+)}", messages["zh-CN"][key])
        ), key


def test_every_console_key_used_exists() -> None:
    from pathlib import Path

    from adesync.web.i18n import load_catalogues

    known = set(load_catalogues().messages["en"])
    root = Path(__file__).resolve().parents[2] / "src" / "adesync" / "web"
    used: set[str] = set()
    for path in [*root.glob("templates/*.html"), *root.glob("console/*.py")]:
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_.]*[a-z_])["']""", path.read_text()))
    assert used - known == set()


@pytest.mark.parametrize("path", ["/static/app.css", "/static/app.js"])
async def test_static_files_are_served_locally(web: Web, path: str) -> None:
    answer = await web.client.get(path)
    assert answer.status_code == 200
    assert "http" not in answer.text.split("\n", 1)[0]


async def test_security_headers(web: Web) -> None:
    answer = await web.client.get("/login")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"


async def _tokens_in_states(web: Web, states: dict[str, str | None]) -> None:
    now = utcnow()
    async with web.db.write() as session:
        await session.execute(
            tokens.insert(),
            [
                {
                    "name": name,
                    "dep_url": "http://127.0.0.1:9",
                    "state": state,
                    "state_reason": "token_expired" if state == "error" else None,
                    "created_at": now,
                    "updated_at": now,
                }
                for name, state in states.items()
            ],
        )


async def test_token_page_and_list_show_expiry_alike(web: Web) -> None:
    now = utcnow()
    expiries = {"soon": now + timedelta(days=10, hours=1), "gone": now - timedelta(days=3, hours=1)}
    async with web.db.write() as session:
        await session.execute(
            tokens.insert(),
            [
                {
                    "name": name,
                    "dep_url": "http://127.0.0.1:9",
                    "oauth_credentials": web.box.seal_text("{}"),
                    "access_token_expiry": expiry,
                    "created_at": now,
                    "updated_at": now,
                }
                for name, expiry in expiries.items()
            ],
        )
    await sign_in(web)
    listing = (await web.client.get("/tokens")).text
    for name, cell in (
        ("soon", '<span class="days warning">11 days left</span>'),
        ("gone", '<span class="days error">expired 3 days ago</span>'),
    ):
        page = (await web.client.get(f"/tokens/{name}")).text
        assert cell in page, name
        row = listing[listing.index(f'data-token="{name}"') :]
        assert cell in row[: row.index("</tr>")], name


async def test_alert_names_the_first_five_tokens_in_error_and_links_to_the_rest(
    web: Web,
) -> None:
    states: dict[str, str | None] = {f"bad-{i:02d}": "error" for i in range(12)}
    states |= {"fine-1": "healthy", "fine-2": None}
    await _tokens_in_states(web, states)
    await sign_in(web)
    page = (await web.client.get("/tokens")).text
    alert = page[page.index('id="token-alert"') : page.index("<main")]
    assert "12 ADE token(s) in an error state" in alert
    assert re.findall(r'href="/tokens/([^"#]+)#findings"', alert) == [
        f"bad-{i:02d}" for i in range(5)
    ]
    assert '<a href="/tokens?state=error">and 7 more' in alert
    web.client.cookies.set("adesync_lang", "zh-CN")
    chinese = (await web.client.get("/devices")).text
    assert "另有 7 个" in chinese and "12 个 ADE 令牌处于错误状态" in chinese


async def test_alert_without_more_tokens_has_no_link_to_the_rest(web: Web) -> None:
    await _tokens_in_states(web, {"bad-1": "error", "bad-2": "error", "fine": "healthy"})
    await sign_in(web)
    page = (await web.client.get("/tokens")).text
    assert "2 ADE token(s) in an error state" in page
    assert "/tokens?state=error" not in page


async def test_token_list_narrowed_to_a_state_shows_only_those_tokens(web: Web) -> None:
    await _tokens_in_states(web, {"bad-1": "error", "fine": "healthy", "new": None})
    await sign_in(web)
    narrowed = (await web.client.get("/tokens?state=error")).text
    rows = re.findall(r'data-token="([^"]+)"', narrowed)
    assert rows == ["bad-1"]
    assert 'id="tokens-filter"' in narrowed and "Error" in narrowed
    everything = (await web.client.get("/tokens?state=bogus")).text
    assert re.findall(r'data-token="([^"]+)"', everything) == ["bad-1", "fine", "new"]
    assert 'id="tokens-filter"' not in everything


async def test_a_page_reads_through_one_pooled_connection_and_shows_changes_at_once(
    web: Web,
) -> None:
    """A GET's reads (session, alert banner, the page's rows and counts) share one read
    transaction; a row rendered before is re-rendered as soon as a value it shows changes."""
    await _tokens_in_states(web, {"bad-1": "error", "fine": "healthy"})
    await sign_in(web)
    await web.client.get("/tokens")  # the device counts are cached from here on
    checkouts: list[object] = []
    engine = web.db.engine.sync_engine
    listener = lambda *_: checkouts.append(1)  # noqa: E731
    event.listen(engine, "checkout", listener)
    try:
        page = (await web.client.get("/tokens")).text
        assert len(checkouts) == 1
        assert "1 ADE token(s) in an error state" in page
        checkouts.clear()
        async with web.db.write() as session:
            await session.execute(
                update(tokens)
                .where(tokens.c.name == "bad-1")
                .values(state="healthy", state_reason=None, org_name="<Org & Co>")
            )
        page = (await web.client.get("/tokens")).text
    finally:
        event.remove(engine, "checkout", listener)
    assert "in an error state" not in page
    assert '<tr class="row-healthy" data-token="bad-1">' in page
    row = page[page.index('data-token="bad-1"') : page.index('data-token="fine"')]
    assert "&lt;Org &amp; Co&gt;" in row and "<Org" not in row


async def test_api_reads_share_one_connection_only_for_get(web: Web) -> None:
    await _tokens_in_states(web, {"a": "healthy"})
    headers = web.as_role(Role.ADMIN)
    assert (await web.client.get("/api/v1/tokens", headers=headers)).status_code == 200
    checkouts: list[object] = []
    engine = web.db.engine.sync_engine
    listener = lambda *_: checkouts.append(1)  # noqa: E731
    event.listen(engine, "checkout", listener)
    try:
        assert (await web.client.get("/api/v1/tokens", headers=headers)).status_code == 200
        assert len(checkouts) == 1
    finally:
        event.remove(engine, "checkout", listener)
