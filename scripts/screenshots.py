"""Take the README's screenshots of the console: the token list and a token page.

Runs the demo in-process (simulator, temporary SQLite home, five tokens, syncs, console on a
loopback port), signs in with Debian's chromium through Playwright and writes PNG files.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import threading
from pathlib import Path

import uvicorn

from adesync.config import Settings
from adesync.simulator import Simulator, run_in_thread
from adesync.web.app import create_app
from adesync.web.demo import add_stub_endpoint, prepare_home, seed

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main() -> None:
    parser = argparse.ArgumentParser(description="Screenshots of the adesync console.")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="adesync-shots-"))
    prepare_home(home)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(home=home)
    sim = Simulator(devices=0, seed=7)
    apple_url, stop_sim = run_in_thread(sim)
    setup = asyncio.run(seed(settings, sim, apple_url, url))
    app = create_app(settings)
    add_stub_endpoint(app)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    waiting = threading.Event()
    while not server.started:
        waiting.wait(0.01)
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}/login")
            page.get_by_label("User name").fill("admin")
            page.get_by_label("Password").fill(setup.password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{url}/tokens")
            page.screenshot(path=str(args.out / "token-list.png"), full_page=True)
            page.goto(f"{url}/tokens/northwind-school")
            page.screenshot(path=str(args.out / "token-page.png"), full_page=True)
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.context.add_cookies(page.context.cookies())
            phone.goto(f"{url}/tokens")
            phone.screenshot(path=str(args.out / "token-list-phone.png"))
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        stop_sim()
    for name in ("token-list.png", "token-page.png", "token-list-phone.png"):
        print(args.out / name)


if __name__ == "__main__":
    main()
