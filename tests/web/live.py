"""A real ``adesync`` web server on a loopback port over a SQLite home, with the Apple
simulator: for the browser tests and the schema fuzzing (which talk real HTTP)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from adesync.config import Settings
from adesync.simulator import Simulator, run_in_thread
from adesync.web.runner import serving_config, with_head_limits

T = TypeVar("T")


@dataclass
class Live:
    url: str
    apple_url: str
    sim: Simulator
    settings: Settings
    seeded: Any


def run_on_thread(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end on a thread of its own (the caller may be inside a loop)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(work()))  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


@contextmanager
def serving(app: FastAPI, settings: Settings) -> Iterator[str]:
    """``app`` on a loopback port in a thread, configured as ``adesync serve`` configures
    uvicorn (trusted proxies from ``settings``); yields its URL."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        config = serving_config(with_head_limits(app, settings), settings, "warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        ready = threading.Event()
        while not server.started and thread.is_alive():
            ready.wait(0.01)
        assert server.started, "the server did not start"
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        sock.close()


@contextmanager
def live_server(
    home: Path, seed: Callable[[Settings, Simulator, str], Awaitable[Any]], *, devices: int = 6
) -> Iterator[Live]:
    from adesync.web.app import create_app

    settings = Settings(home=home)
    sim = Simulator(devices=devices, seed=5)
    apple_url, stop_sim = run_in_thread(sim)
    try:
        seeded = run_on_thread(lambda: seed(settings, sim, apple_url))
        with serving(create_app(settings), settings) as url:
            yield Live(url, apple_url, sim, settings, seeded)
    finally:
        stop_sim()


PASSWORD = "live-test-password"


@dataclass
class Installation:
    """A SQLite home with the users ``admin`` (admin) and ``bob`` (viewer), both with
    ``PASSWORD``, an API key per role, and the token ``north`` (not yet uploaded)."""

    settings: Settings
    keys: dict[Any, str]


def install_home(home: Path, **overrides: Any) -> Installation:
    from adesync.commands.admin import initialise
    from adesync.runtime import open_runtime
    from adesync.services import tokens as token_service
    from adesync.web import accounts
    from adesync.web.roles import KEY_ROLES, Role

    settings = Settings(home=home, **overrides)

    async def seed() -> dict[Any, str]:
        await initialise(settings)
        async with open_runtime(settings) as rt:
            await accounts.reset_password(rt.db, "admin", actor="test", password=PASSWORD)
            await accounts.add_user(rt.db, "bob", Role.VIEWER, actor="test", password=PASSWORD)
            await token_service.keypair_certificate(rt.db, rt.box, "north")
            keys = {}
            for role in KEY_ROLES:
                _, keys[role] = await accounts.create_api_key(
                    rt.db, f"key-{role.value}", role, actor="test"
                )
            return keys

    return Installation(settings, run_on_thread(seed))
