"""``adesync serve``: API, console, help pages, metrics, probes and the scheduler on one port."""

from __future__ import annotations

import typer

from adesync.commands.common import out, run
from adesync.config import load_settings
from adesync.runtime import open_runtime


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Tokens synced at once."),
    no_scheduler: bool = typer.Option(
        False, "--no-scheduler", help="Serve only; leave syncing to `adesync worker`."
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="Server processes sharing the port."
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        min=1,
        max=65535,
        help="Also serve Prometheus metrics on this port, without authentication.",
    ),
    metrics_host: str = typer.Option(
        "127.0.0.1", "--metrics-host", help="Address of the --metrics-port listener."
    ),
) -> None:
    """Serve the API (/api/v1), the console (/login) and the in-process scheduler."""
    from adesync.web.app import create_app
    from adesync.web.runner import serve_app, serving_hooks
    from adesync.web.workers import PortUnavailable, listening_socket
    from adesync.wiring import install

    install()
    settings = load_settings()
    if metrics_port is not None and workers > 1:
        # Each process counts its own calls and runs: one port would show one process's.
        raise typer.BadParameter(
            "--metrics-port serves one process's metrics; with --workers scrape /metrics on "
            "the console port with a viewer key.",
            param_hint="--metrics-port",
        )

    async def check() -> None:
        async with open_runtime(settings):
            pass

    run(check())  # one clear error (no database, wrong key) before the server starts
    listener = listening_socket(host, port)  # and one if the port cannot be listened on
    try:
        if metrics_port is not None:  # one clear error for the metrics port too
            flags = ("--metrics-host", "--metrics-port")
            listening_socket(metrics_host, metrics_port, flags=flags).close()
    except PortUnavailable:
        listener.close()
        raise
    try:
        out.print(f"adesync console at http://{host}:{port}/login (API: /api/v1)", highlight=False)
        if metrics_port is not None:
            where = f"http://{metrics_host}:{metrics_port}/metrics"
            out.print(f"metrics at {where} (no authentication)", highlight=False)
        if workers > 1:
            import os

            from adesync.web.runner import WORKER_SCHEDULER_ENV, serve_workers

            os.environ[WORKER_SCHEDULER_ENV] = "0" if no_scheduler else str(concurrency)
            serve_workers(listener, workers, settings)
            return
        metrics = (metrics_host, metrics_port) if metrics_port is not None else None
        hooks = serving_hooks(0 if no_scheduler else concurrency, metrics)
        app = create_app(settings, on_start=hooks)
        serve_app(app, listener, settings)
    finally:
        listener.close()
