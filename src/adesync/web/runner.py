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
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from adesync.config import Settings
from adesync.longlived import freeze_startup_objects
from adesync.web.app import Hook
from adesync.web.serving import HeadLimits
from adesync.web.state import WebState

__all__ = [
    "metrics_hook",
    "scheduler_hook",
    "serve_app",
    "serve_workers",
    "serving_config",
    "serving_hooks",
    "settle",
    "with_head_limits",
]


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


# The serving limits (``ADESYNC_HEADER_MAX_BYTES``, ``_HEADER_TIMEOUT_SECONDS``,
# ``_LIMIT_CONCURRENCY``) need h11: httptools takes headers of any size, as slowly as they come.
HTTP_PARSER = "h11"
SERVING_LOOP = "adesync.web.serving:new_event_loop"


def serving_config(
    app: ASGIApp | str, settings: Settings, log_level: str | None = None, **options: Any
) -> uvicorn.Config:
    """uvicorn's settings for serving ``app`` (an app, or the import string of a factory
    with ``factory=True``) with the serving limits of ``settings``: h11 answers 400 and closes
    the connection when a request's line and headers pass ``header_max_bytes`` before they
    end (so a huge header is never read whole), a process holding ``limit_concurrency``
    connections or requests answers 503, and the loop (``adesync.web.serving``) keeps the
    head deadline with ``HeadLimits``, which ``with_head_limits`` puts around the app. The
    log level is the settings' unless ``log_level`` says otherwise."""
    return uvicorn.Config(
        app,
        log_level=log_level or settings.log_level.lower(),
        # X-Forwarded-For and -Proto are believed only from the proxies
        # ADESYNC_FORWARDED_ALLOW_IPS names (none by default, not even 127.0.0.1: uvicorn's
        # own default would trust it).
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        http=HTTP_PARSER,
        loop=SERVING_LOOP,
        h11_max_incomplete_event_size=settings.header_max_bytes,
        limit_concurrency=settings.limit_concurrency,
        **options,
    )


def with_head_limits(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` with the head limits of ``settings``: its size and its deadline."""
    return HeadLimits(app, settings.header_max_bytes, settings.header_timeout_seconds)


def serve_app(app: ASGIApp, listener: socket.socket, settings: Settings) -> None:
    """Serve ``app`` on ``listener`` (``workers.listening_socket``) with the serving limits of
    ``settings`` until Ctrl-C or SIGTERM."""
    config = serving_config(with_head_limits(app, settings), settings)
    uvicorn.Server(config).run(sockets=[listener])


# How ``serve --workers N`` tells each worker process what ``app_from_environment`` builds.
WORKER_SCHEDULER_ENV = "ADESYNC_SERVE_SCHEDULER_CONCURRENCY"


def app_from_environment() -> ASGIApp:
    """The app of one ``serve --workers N`` process, from the ADESYNC_* settings, with their
    head deadline; each process runs a scheduler too unless ``--no-scheduler`` (leases keep
    them from syncing a token twice)."""
    from adesync.config import load_settings
    from adesync.web.app import create_app
    from adesync.wiring import install

    install()
    concurrency = int(os.environ.get(WORKER_SCHEDULER_ENV, "0"))
    settings = load_settings()
    return with_head_limits(create_app(settings, on_start=serving_hooks(concurrency)), settings)


def serve_workers(listener: socket.socket, workers: int, settings: Settings) -> None:
    """Serve with ``workers`` processes on ``listener``'s port, each with the serving limits
    of ``settings`` (which the workers read from the same ADESYNC_* variables). On Linux the
    supervisor accepts the connections and hands them to the workers in turn
    (:mod:`adesync.web.workers`); elsewhere uvicorn's own supervisor shares the listening
    socket."""
    config = serving_config(
        "adesync.web.runner:app_from_environment", settings, factory=True, workers=workers
    )
    if sys.platform != "linux":
        Multiprocess(config, sockets=[listener]).run()
        return
    from adesync.web.workers import supervise

    supervise(config, listener, workers)
