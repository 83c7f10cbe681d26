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

from adesync.config import Settings
from adesync.simulator import Simulator, run_in_thread

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
def live_server(
    home: Path, seed: Callable[[Settings, Simulator, str], Awaitable[Any]], *, devices: int = 6
) -> Iterator[Live]:
    from adesync.web.app import create_app

    settings = Settings(home=home)
    sim = Simulator(devices=devices, seed=5)
    apple_url, stop_sim = run_in_thread(sim)
    sock = socket.socket()
    try:
        seeded = run_on_thread(lambda: seed(settings, sim, apple_url))
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        ready = threading.Event()
        while not server.started and thread.is_alive():
            ready.wait(0.01)
        try:
            yield Live(
                f"http://127.0.0.1:{sock.getsockname()[1]}", apple_url, sim, settings, seeded
            )
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        sock.close()
        stop_sim()
