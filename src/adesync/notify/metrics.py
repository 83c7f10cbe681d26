"""Prometheus metrics (prometheus_client), in a registry of adesync's own.

Per-token gauges come from the database (a snapshot refreshed at most every
``SNAPSHOT_SECONDS``, so every worker reports the same values); counters count what this
process did (each worker exposes its own, Prometheus sums them):

- ``adesync_token_expiry_timestamp_seconds``, ``adesync_token_days_left``,
  ``adesync_token_state`` (0 healthy, 1 warning, 2 error),
  ``adesync_token_last_successful_sync_timestamp_seconds``, ``adesync_token_devices`` —
  labels ``token``, ``org``;
- ``adesync_findings`` (current findings by ``code`` and ``severity``),
  ``adesync_notifications_queued`` (outbox rows by ``channel`` and ``status``);
- ``adesync_apple_calls_total{endpoint,code}`` (every attempt at a call to Apple by this
  process: the Apple path and ``ok`` or the error code, through :func:`record_apple_answer`),
  ``adesync_sync_runs_total{outcome}``, ``adesync_notifications_total{channel,result}``.

:func:`metrics_app` is an ASGI app for ``serve`` to mount at ``/metrics``;
:func:`start_metrics_server` serves them on a port of their own (``worker --metrics-port``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Receive, Scope, Send

from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_health import findings, notify_outbox
from adesync.store.tables_sync import devices, sync_runs
from adesync.store.types import utcnow

__all__ = [
    "APPLE_CALLS",
    "NOTIFICATIONS",
    "REGISTRY",
    "SYNC_RUNS",
    "MetricsServer",
    "Snapshot",
    "count_sync_run",
    "metrics_app",
    "record_apple_answer",
    "refresh",
    "render_metrics",
    "start_metrics_server",
    "take_snapshot",
]

log = logging.getLogger("adesync.notify")

SNAPSHOT_SECONDS = 15.0
STATE_VALUES = {"healthy": 0, "warning": 1, "error": 2}

REGISTRY = CollectorRegistry()
APPLE_CALLS = Counter(
    "adesync_apple_calls",
    "Calls to Apple's ADE service (every attempt, retries too), by Apple path and outcome: ok "
    "or the error code (apple_unavailable when no answer came).",
    ["endpoint", "code"],
    registry=REGISTRY,
)
SYNC_RUNS = Counter(
    "adesync_sync_runs", "Finished sync runs, by outcome.", ["outcome"], registry=REGISTRY
)
NOTIFICATIONS = Counter(
    "adesync_notifications",
    "Notification delivery attempts, by channel and result (sent or error).",
    ["channel", "result"],
    registry=REGISTRY,
)


@dataclass(frozen=True)
class TokenSample:
    name: str
    org: str
    expiry: datetime | None
    state: str | None
    last_success: datetime | None
    devices: int


@dataclass(frozen=True)
class Snapshot:
    """What the gauges show, read from the database at ``taken`` (monotonic seconds)."""

    taken: float
    now: datetime
    tokens: list[TokenSample] = field(default_factory=list)
    findings: dict[tuple[str, str], int] = field(default_factory=dict)
    outbox: dict[tuple[str, str], int] = field(default_factory=dict)


async def take_snapshot(db: Database) -> Snapshot:
    """Read the gauges' values: one query per table, device counts grouped by token."""
    async with db.read() as session:
        counts = {
            token_id: count
            for token_id, count in await session.execute(
                select(devices.c.token_id, func.count())
                .where(devices.c.deleted.is_(False))
                .group_by(devices.c.token_id)
            )
        }
        rows = await session.execute(
            select(
                tokens.c.id,
                tokens.c.name,
                tokens.c.org_name,
                tokens.c.access_token_expiry,
                tokens.c.state,
                tokens.c.last_successful_sync_at,
            )
            .where(tokens.c.oauth_credentials.is_not(None))
            .order_by(tokens.c.name)
        )
        samples = [
            TokenSample(
                row.name,
                row.org_name or "",
                row.access_token_expiry,
                row.state,
                row.last_successful_sync_at,
                counts.get(row.id, 0),
            )
            for row in rows
        ]
        found = {
            (code, severity): count
            for code, severity, count in await session.execute(
                select(findings.c.code, findings.c.severity, func.count()).group_by(
                    findings.c.code, findings.c.severity
                )
            )
        }
        queued = {
            (channel, status): count
            for channel, status, count in await session.execute(
                select(notify_outbox.c.channel, notify_outbox.c.status, func.count()).group_by(
                    notify_outbox.c.channel, notify_outbox.c.status
                )
            )
        }
    return Snapshot(time.monotonic(), utcnow(), samples, found, queued)


class _DatabaseCollector(Collector):
    """Yields the gauges of the latest snapshot (none before the first)."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self.snapshot
        if snapshot is None:
            return
        labels = ["token", "org"]
        expiry = GaugeMetricFamily(
            "adesync_token_expiry_timestamp_seconds",
            "When the token's access_token_expiry is (Unix time).",
            labels=labels,
        )
        days = GaugeMetricFamily(
            "adesync_token_days_left", "Days until the token expires.", labels=labels
        )
        state = GaugeMetricFamily(
            "adesync_token_state", "Health state: 0 healthy, 1 warning, 2 error.", labels=labels
        )
        synced = GaugeMetricFamily(
            "adesync_token_last_successful_sync_timestamp_seconds",
            "When the token last synced successfully (Unix time).",
            labels=labels,
        )
        count = GaugeMetricFamily(
            "adesync_token_devices", "Live devices on the token.", labels=labels
        )
        for token in snapshot.tokens:
            values = [token.name, token.org]
            if token.expiry is not None:
                expiry.add_metric(values, token.expiry.timestamp())
                left = (token.expiry - snapshot.now).total_seconds() / 86400
                days.add_metric(values, round(left, 3))
            state.add_metric(values, STATE_VALUES.get(token.state or "healthy", 0))
            if token.last_success is not None:
                synced.add_metric(values, token.last_success.timestamp())
            count.add_metric(values, token.devices)
        yield from (expiry, days, state, synced, count)
        current = GaugeMetricFamily(
            "adesync_findings",
            "Current findings, by code and severity.",
            labels=["code", "severity"],
        )
        for (code, severity), number in sorted(snapshot.findings.items()):
            current.add_metric([code, severity], number)
        yield current
        queued = GaugeMetricFamily(
            "adesync_notifications_queued",
            "Notifications in the outbox, by channel and status (pending, sent, failed).",
            labels=["channel", "status"],
        )
        for (channel, status), number in sorted(snapshot.outbox.items()):
            queued.add_metric([channel, status], number)
        yield queued


COLLECTOR = _DatabaseCollector()
REGISTRY.register(COLLECTOR)


async def refresh(db: Database, *, max_age: float = SNAPSHOT_SECONDS) -> None:
    """Re-read the gauges unless the snapshot is younger than ``max_age`` seconds."""
    current = COLLECTOR.snapshot
    if current is None or time.monotonic() - current.taken >= max_age:
        COLLECTOR.snapshot = await take_snapshot(db)


async def render_metrics(db: Database, *, max_age: float = SNAPSHOT_SECONDS) -> bytes:
    """The metrics in Prometheus' text format (``CONTENT_TYPE_LATEST``)."""
    await refresh(db, max_age=max_age)
    return generate_latest(REGISTRY)


def record_apple_answer(endpoint: str, code: str) -> None:
    """Count one attempt at a call to Apple (an ``adesync.apple.AnswerObserver``)."""
    APPLE_CALLS.labels(endpoint, code).inc()


# The newest run counted per (database, token), so a check after a sync counts nothing twice.
_counted_runs: dict[tuple[str, int], int] = {}


async def count_sync_run(db: Database, token_id: int) -> None:
    """Count the token's newest finished sync run (once) by outcome. Registered to run after
    each token's sync."""
    async with db.read() as session:
        row = (
            await session.execute(
                select(sync_runs.c.id, sync_runs.c.outcome)
                .where(sync_runs.c.token_id == token_id, sync_runs.c.finished_at.is_not(None))
                .order_by(sync_runs.c.id.desc())
                .limit(1)
            )
        ).first()
    key = (db.url.render_as_string(hide_password=True), token_id)
    if row is None or _counted_runs.get(key) == row.id:
        return
    _counted_runs[key] = row.id
    SYNC_RUNS.labels(row.outcome).inc()


def metrics_app(db: Database | Callable[[], Database]) -> ASGIApp:
    """An ASGI app answering every GET with the metrics; ``db`` is the database or a
    function returning it (when the web app opens it only at start-up)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await send(
                {"type": "http.response.start", "status": 405, "headers": [(b"allow", b"GET")]}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        database = db if isinstance(db, Database) else db()
        body = await render_metrics(database)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    return app


@dataclass
class MetricsServer:
    """A running metrics port: the HTTP server thread and the task refreshing the gauges."""

    http: Any
    refresher: asyncio.Task[None]
    port: int

    def stop(self) -> None:
        """Stop serving and refreshing (the refresh ends at its next await)."""
        self.refresher.cancel()
        self.http.shutdown()
        self.http.server_close()

    async def aclose(self) -> None:
        """Stop, and wait until the refresh has let go of its database connection."""
        self.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await self.refresher


def start_metrics_server(db: Database, port: int, host: str = "0.0.0.0") -> MetricsServer:  # noqa: S104
    """Serve the metrics on ``host:port`` (0 picks a free port) from a thread, refreshing the
    gauges from the database every ``SNAPSHOT_SECONDS`` on the running event loop; OSError
    if the port is taken."""
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)

    async def keep_fresh() -> None:
        while True:
            try:
                COLLECTOR.snapshot = await take_snapshot(db)
            except Exception:
                log.exception("could not refresh the metrics from the database")
            await asyncio.sleep(SNAPSHOT_SECONDS)

    task = asyncio.get_running_loop().create_task(keep_fresh(), name="adesync-metrics")
    return MetricsServer(server, task, server.server_address[1])
