"""``adesync sync`` and ``adesync worker``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from adesync.commands.common import Stopped, err, iso, out, print_json, run
from adesync.commands.wording import skip_hint
from adesync.errors import AdesyncError
from adesync.longlived import freeze_startup_objects
from adesync.runtime import open_runtime
from adesync.services.lifecycle import sync_tokens
from adesync.sync.model import RunTotals
from adesync.sync.scheduler import Scheduler
from adesync.sync.service import SyncReport, SyncService
from adesync.wiring import install, page_events


def sync(
    names: list[str] | None = typer.Argument(
        None, help="Tokens to sync (default: none; see --all)."
    ),
    all_tokens: bool = typer.Option(
        False, "--all", help="Sync every token that holds credentials."
    ),
    full: bool = typer.Option(False, "--full", help="Fetch every device again (a full fetch)."),
    force: bool = typer.Option(
        False, "--force", help="Ignore the 15-minute manual-sync throttle (and 7-day full fetch)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array, nothing else."),
) -> None:
    """Sync devices from Apple now, with a progress bar."""
    if not names and not all_tokens:
        raise AdesyncError("Name the tokens to sync, or use --all to sync every token.")
    install()
    freeze_startup_objects()

    async def go() -> list[SyncReport]:
        async with open_runtime() as rt:
            service = SyncService(rt.db, rt.box, rt.settings, page_events=page_events())
            if as_json:
                return await sync_tokens(service, names or None, full=full, force=force)
            with Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.fields[token]}"),
                BarColumn(bar_width=None),
                TextColumn("{task.fields[pages]} pages · {task.fields[devices]} devices"),
                TimeElapsedColumn(),
                console=err,
                # The summary table follows; a kept bar would also leave an empty line before
                # an error such as an unknown token name.
                transient=True,
            ) as bar:
                tasks: dict[str, Any] = {}

                def progress(token: str, totals: RunTotals) -> None:
                    if token not in tasks:
                        tasks[token] = bar.add_task("", total=None, token=token, pages=0, devices=0)
                    bar.update(tasks[token], pages=totals.pages, devices=totals.devices)

                return await sync_tokens(
                    service, names or None, full=full, force=force, progress=progress
                )

    try:
        reports = run(go())
    except Stopped as stopped:
        raise Stopped(
            stopped.signum,
            f"Sync stopped by {stopped.signal_name}: the devices fetched so far are kept, the "
            "run is recorded as interrupted, and the next sync goes on from where it stopped.",
        ) from None
    if as_json:
        print_json([report.as_json() for report in reports])
    else:
        _summary(reports)
    if any(report.outcome not in ("ok", "skipped") for report in reports):
        raise typer.Exit(1)


def _summary(reports: list[SyncReport]) -> None:
    table = Table(title="Sync")
    columns = ("token", "outcome", "kind", "pages", "added", "modified", "deleted", "unchanged")
    for column in (*columns, "assigned"):
        table.add_column(column)
    colours = {"ok": "green", "skipped": "yellow", "throttled": "yellow", "error": "red"}
    for r in reports:
        table.add_row(
            r.token,
            f"[{colours.get(r.outcome, 'white')}]{r.outcome}[/]",
            r.kind,
            str(r.pages),
            str(r.added),
            str(r.modified),
            str(r.deleted),
            str(r.unchanged),
            str(r.assigned),
        )
    out.print(table)
    for r in reports:
        if r.message:
            err.print(f"{r.token}: {_worded(r)}", highlight=False, markup=False)


def _worded(report: SyncReport) -> str:
    """The report's message with, for a skipped sync, when it may run and how to run it now."""
    text = (report.message or "").rstrip(".")
    if report.outcome != "skipped":
        return f"{text}."
    if report.next_allowed_at is not None:
        text += f" (it may run again at {iso(report.next_allowed_at)})"
    hint = skip_hint(report.error_code)
    return f"{text}; {hint}." if hint else f"{text}."


def worker(
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Tokens synced at once."),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        help="Serve Prometheus metrics on this port, without authentication.",
    ),
    metrics_host: str = typer.Option(
        "127.0.0.1",
        "--metrics-host",
        help="Address of the --metrics-port listener (this machine only unless you say so).",
    ),
) -> None:
    """Run the scheduler and sync workers (no web server); stop with Ctrl-C or SIGTERM."""
    install()
    freeze_startup_objects()

    async def go() -> None:
        async with open_runtime() as rt:
            if metrics_port is not None:
                from adesync.wiring import start_metrics_server

                start_metrics_server(rt.db, metrics_port, metrics_host)
            scheduler = Scheduler(
                rt.db, rt.box, rt.settings, concurrency=concurrency, page_events=page_events()
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            out.print(f"adesync worker {scheduler.worker} running (concurrency {concurrency}).")
            await scheduler.run(stop)

    run(go())
