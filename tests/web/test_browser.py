"""The console in headless Chromium (Debian's, driven by Playwright) against a real server on a
loopback port, a SQLite home and the Apple simulator: sign in, see the alert naming the failing
token, renew it by uploading a new .p7m, see the alert clear, switch to zh-CN, use a phone; a
page on another port of the same host cannot make the signed-in admin delete a token."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from adesync.config import Settings
from adesync.simulator import Simulator
from tests.web.live import live_server

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-test-password"


@dataclass
class Console:
    url: str
    sim: Simulator
    broken_uuid: str
    tmp: Path


async def _seed(settings: Settings, sim: Simulator, apple_url: str) -> str:
    from adesync.commands.admin import initialise
    from adesync.runtime import open_runtime
    from adesync.services import tokens as token_service
    from adesync.services.apple_account import make_verifier
    from adesync.sync.service import SyncService
    from adesync.web import accounts
    from adesync.wiring import install

    install()
    await initialise(settings)
    async with open_runtime(settings) as rt:
        await accounts.reset_password(rt.db, "admin", actor="test", password=PASSWORD)
        uuids = {}
        for name in ("good", "broken"):
            cert = await token_service.keypair_certificate(rt.db, rt.box, name)
            download = sim.create_server(name, certificate_pem=cert.certificate_pem, devices=6)
            assert download.p7m is not None
            await token_service.add_token(
                rt.db,
                rt.box,
                name,
                download.p7m,
                dep_url=apple_url,
                verify=make_verifier(settings),
            )
            uuids[name] = download.server_uuid
        sim.revoke_token(uuids["broken"])
        await SyncService(rt.db, rt.box, settings).sync_named(None, trigger="add")
    return uuids["broken"]


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    with live_server(tmp_path / "home", _seed) as live:
        yield Console(live.url, live.sim, live.seeded, tmp_path)


@pytest.fixture
def page():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        yield context.new_page()
        context.close()
        browser.close()


def sign_in(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{console.url}/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{console.url}/tokens")


def test_renewing_the_failing_token_clears_the_alert(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, console)
    alert = page.locator("#token-alert")
    assert alert.is_visible()
    assert "broken" in alert.inner_text() and "good" not in alert.inner_text()
    assert page.locator("tr[data-token=broken] .badge").inner_text() == "Error"
    assert page.locator("tr[data-token=good] .badge").inner_text() in ("Healthy", "Warning")

    alert.get_by_role("link", name="broken").click()
    page.wait_for_url(f"{console.url}/tokens/broken#findings")
    assert page.locator("#finding-token_rejected").is_visible()

    # The admin downloads a new token for the same MDM server in ABM and uploads it here.
    download = console.sim.download_token(console.broken_uuid)
    assert download.p7m is not None
    p7m = console.tmp / "broken_smime.p7m"
    p7m.write_bytes(download.p7m)
    page.get_by_label("Token file (.p7m)").set_input_files(str(p7m))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(f"{console.url}/tokens/broken")
    assert "Token stored" in page.locator(".flash").inner_text()
    assert page.locator("#token-alert").count() == 0

    page.goto(f"{console.url}/tokens")
    assert page.locator("#token-alert").count() == 0
    assert page.locator("tr[data-token=broken] .badge").inner_text() in ("Healthy", "Warning")


def test_switching_to_simplified_chinese(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, console)
    page.get_by_label("Language").select_option("zh-CN")
    page.wait_for_function("document.documentElement.lang === 'zh-CN'")
    assert page.locator("h1").inner_text() == "设备注册计划令牌"
    assert "处于错误状态" in page.locator("#token-alert").inner_text()
    page.goto(f"{console.url}/tokens/broken")
    assert page.get_by_role("button", name="立即同步").is_visible()


def test_the_token_list_fits_a_phone(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, console)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    assert page.locator("#token-alert").is_visible()
    # Every form control has an accessible name.
    unnamed = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select, button')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                     && !(e.textContent || '').trim()).length"""
    )
    assert unnamed == 0


EVIL_PAGE = """<!doctype html><html><body>
<form id="f" method="post" action="{action}">
<input type="hidden" name="csrf_token" value="{token}">
<input type="hidden" name="confirm" value="good">
</form>
<script>
document.cookie = "{cookie}; path=/";
document.getElementById("f").submit();
</script></body></html>"""


@contextmanager
def evil_site(page_html: str) -> Iterator[str]:
    """A page on another port of 127.0.0.1: same site as the console, another origin."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page_html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_port_cannot_delete_a_token(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    # The attacker gets a cookie and its token from /login, as the attack on the old scheme did.
    with httpx.Client(base_url=console.url) as attacker:
        login = attacker.get("/login").text
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', login)
        assert token is not None
        cookie = "; ".join(f"{k}={v}" for k, v in attacker.cookies.items())
    html = EVIL_PAGE.format(
        action=f"{console.url}/tokens/good/delete", token=token.group(1), cookie=cookie
    )
    sign_in(page, console)
    with evil_site(html) as evil_url:
        page.goto(evil_url)
        page.wait_for_url(f"{console.url}/tokens/good/delete")
        assert "another site" in page.content()
    page.goto(f"{console.url}/tokens")
    assert page.locator("tr[data-token=good]").count() == 1
