"""Running the web app: the in-process scheduler hook, uvicorn's configuration, and uvicorn on
one port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from adesync.config import Settings
from adesync.longlived import freeze_startup_objects
from adesync.web.app import Hook
from adesync.web.state import WebState

__all__ = [
    "metrics_hook",
    "scheduler_hook",
    "serve_app",
    "serve_workers",
    "serving_hooks",
    "settle",
    "uvicorn_config",
]


def uvicorn_config(app: FastAPI | str, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for serving adesync: ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed only from the proxies ``ADESYNC_FORWARDED_ALLOW_IPS``
    names (none by default, not even 127.0.0.1: uvicorn's own default would trust it)."""
    trusted = settings.forwarded_allow_ips
    return uvicorn.Config(
        app,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        **options,
    )


def scheduler_hook(concurrency: int = 4) -> Hook:
    """Start the sync scheduler inside the server process; stopped at shutdown."""

    async def start(state: WebState) -> Callable[[], Awaitable[None]]:
        from adesync.sync.scheduler import Scheduler
        from adesync.wiring import page_events

        scheduler = Scheduler(
            state.db,
            state.box,
            state.settings,
            concurrency=concurrency,
            kind="serve",
            page_events=page_events(),
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


def metrics_hook(port: int, host: str) -> Hook:
    """Serve the metrics without authentication on ``host:port`` (``serve --metrics-port``),
    stopped at shutdown."""

    async def start(state: WebState) -> Callable[[], Awaitable[None]]:
        from adesync.wiring import start_metrics_server

        return start_metrics_server(state.db, port, host).aclose

    return start


def serving_hooks(scheduler_concurrency: int, metrics: tuple[str, int] | None = None) -> list[Hook]:
    """The start hooks of a ``serve`` process: its scheduler (none if 0), the metrics port
    (``(host, port)``, if any), then ``settle``."""
    scheduler = [scheduler_hook(scheduler_concurrency)] if scheduler_concurrency > 0 else []
    metrics_port = [metrics_hook(metrics[1], metrics[0])] if metrics is not None else []
    return [*scheduler, *metrics_port, settle]


async def settle(_state: WebState) -> None:
    """The last start hook of a serving process. It compiles the console's templates (about
    0.1 s) before a visitor's first page asks for them, then keeps what start-up built
    (modules, routes, models, catalogues, templates, the scheduler) out of garbage collection
    from then on: the full collections that steady requests cause walked all of it and stopped
    the process for 50-95 ms each (:mod:`adesync.longlived`)."""
    from adesync.web.console.render import compile_templates

    compile_templates()
    freeze_startup_objects()


def serve_app(
    app: FastAPI, settings: Settings, listener: socket.socket, log_level: str = "info"
) -> None:
    """Serve ``app`` on ``listener`` (``workers.listening_socket``) until Ctrl-C or SIGTERM."""
    config = uvicorn_config(app, settings, log_level=log_level)
    uvicorn.Server(config).run(sockets=[listener])


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
    return create_app(load_settings(), on_start=serving_hooks(concurrency))


def serve_workers(
    settings: Settings, listener: socket.socket, workers: int, log_level: str = "info"
) -> None:
    """Serve with ``workers`` processes on ``listener``'s port. On Linux the supervisor accepts
    the connections and hands them to the workers in turn (:mod:`adesync.web.workers`);
    elsewhere uvicorn's own supervisor shares the listening socket."""
    config = uvicorn_config(
        "adesync.web.runner:app_from_environment",
        settings,
        factory=True,
        workers=workers,
        log_level=log_level,
    )
    if sys.platform != "linux":
        Multiprocess(config, sockets=[listener]).run()
        return
    from adesync.web.workers import supervise

    supervise(config, listener, workers)
