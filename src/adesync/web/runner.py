"""Running the web app: the in-process scheduler hook and uvicorn on one port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from adesync.web.app import Hook
from adesync.web.state import WebState

__all__ = ["scheduler_hook", "serve_app", "serve_workers"]

logger = logging.getLogger("uvicorn.error")


def scheduler_hook(concurrency: int = 4) -> Hook:
    """Start the sync scheduler inside the server process; stopped at shutdown."""

    async def start(state: WebState) -> Callable[[], Awaitable[None]]:
        from adesync.sync.scheduler import Scheduler

        scheduler = Scheduler(
            state.db, state.box, state.settings, concurrency=concurrency, kind="serve"
        )
        # "Sync now" in the console runs in the same process as the scheduler.
        state.sync = scheduler.service
        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.run(stop), name="adesync-scheduler")

        async def shutdown() -> None:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=30)

        return shutdown

    return start


def serve_app(app: FastAPI, host: str, port: int, log_level: str = "info") -> None:
    """Serve ``app`` until Ctrl-C or SIGTERM."""
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=True)


# How ``serve --workers N`` tells each worker process what ``app_from_environment`` builds.
WORKER_SCHEDULER_ENV = "ADESYNC_SERVE_SCHEDULER_CONCURRENCY"


def app_from_environment() -> FastAPI:
    """The app of one ``serve --workers N`` process, from the ADESYNC_* settings; each process
    runs a scheduler too unless ``--no-scheduler`` (leases keep them from syncing a token twice)."""
    from adesync.config import load_settings
    from adesync.web.app import create_app
    from adesync.wiring import install

    install()
    concurrency = int(os.environ.get(WORKER_SCHEDULER_ENV, "0"))
    hooks = [scheduler_hook(concurrency)] if concurrency > 0 else []
    return create_app(load_settings(), on_start=hooks)


def serve_workers(host: str, port: int, workers: int, log_level: str = "info") -> None:
    """Serve with ``workers`` processes sharing the port.

    On Linux each process listens on a socket of its own bound with SO_REUSEPORT, so the kernel
    spreads new connections over the processes. With one shared socket (uvicorn's supervisor,
    used elsewhere) the process that wakes first accepts a whole burst of connections, and
    keep-alive clients then stay on it while the others idle (bench/api.py: 20 clients, all on
    one of two processes)."""
    config = uvicorn.Config(
        "adesync.web.runner:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=True,
    )
    if sys.platform != "linux":
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    sockets = [_port_socket(host, port) for _ in range(workers)]
    try:
        _supervise(config, sockets)
    finally:
        for sock in sockets:
            sock.close()


def _port_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` that other SO_REUSEPORT sockets may share."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _serve_socket(config: uvicorn.Config, sock: socket.socket) -> None:
    """One worker process: the app from the environment on its own socket."""
    config.configure_logging()
    uvicorn.Server(config).run(sockets=[sock])


def _supervise(config: uvicorn.Config, sockets: list[socket.socket]) -> None:
    """One process per socket until SIGINT or SIGTERM; a worker that dies is replaced on the
    same socket (connections waiting there are kept), unless it failed before serving."""
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start(sock: socket.socket) -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_serve_socket, args=(config, sock), daemon=False)
        process.start()
        return process

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [start(sock) for sock in sockets]
    logger.info("Started %d worker processes [%s]", len(processes), os.getpid())
    try:
        while not stop.wait(0.5):
            for index, process in enumerate(processes):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    logger.error("Worker [%s] failed to start; stopping.", process.pid)
                    stop.set()
                    break
                logger.warning(
                    "Worker [%s] died (exit %s); replacing it.", process.pid, process.exitcode
                )
                processes[index] = start(sockets[index])
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if any(process.exitcode == STARTUP_FAILURE for process in processes):
        raise SystemExit(STARTUP_FAILURE)
