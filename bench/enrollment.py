"""Benchmark: enrollment events on SQLite and PostgreSQL. Prints one JSON document.

One token with ``--devices`` devices (profile downloaded), then: ``--checkins`` devices report
an Authenticate and a TokenUpdate through the webhook path (parse + idempotent record + state
refresh, one transaction each) — check-ins per second; a sync page's state refresh for 1,000
serials (the page hook); the periodic catch-up; and the token's funnel.

    python bench/enrollment.py [--backend sqlite|postgresql|both] [--devices N] [--checkins N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import plistlib
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from adesync.enrollment import EventSource, enrollment_funnel, parse_webhook, record_webhook
from adesync.enrollment.jobs import refresh_after_page
from adesync.enrollment.state import refresh_due
from adesync.store.database import Database
from adesync.store.migrate import upgrade
from adesync.store.tables import tokens
from adesync.store.tables_sync import devices
from adesync.sync.model import DeviceRecord

PG_ADMIN = os.environ.get(
    "ADESYNC_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PG_NAME = "adesync_bench_enrollment"
NOW = datetime.now(UTC).replace(microsecond=0)


def serial(i: int) -> str:
    return f"BENCH{i:07d}"


def webhook(message: dict[str, Any], topic: str, tally: int | None) -> bytes:
    checkin: dict[str, Any] = {"raw_payload": base64.b64encode(plistlib.dumps(message)).decode()}
    if tally is not None:
        checkin["token_update_tally"] = tally
    return json.dumps(
        {"topic": topic, "created_at": NOW.isoformat(), "checkin_event": checkin}
    ).encode()


async def seed(db: Database, count: int) -> int:
    async with db.write() as session:
        token_id = (
            await session.execute(
                insert(tokens)
                .values(name="bench", dep_url="http://127.0.0.1:9", created_at=NOW, updated_at=NOW)
                .returning(tokens.c.id)
            )
        ).scalar_one()
    rows = [
        {
            "token_id": token_id,
            "serial_number": serial(i),
            "profile_status": "pushed",
            "profile_push_time": NOW - timedelta(days=2),
            "enrollment_state": "pushed",
            "first_seen_at": NOW,
            "updated_at": NOW,
        }
        for i in range(count)
    ]
    for start in range(0, count, 10_000):
        async with db.write() as session:
            await session.execute(insert(devices), rows[start : start + 10_000])
    return int(token_id)


async def run(url: str, backend: str, count: int, checkins: int) -> dict[str, Any]:
    db = Database(url)
    try:
        await upgrade(db)
        started = time.perf_counter()
        token_id = await seed(db, count)
        load_seconds = time.perf_counter() - started

        bodies = []
        for i in range(checkins):
            udid = f"UDID-{i:07d}"
            bodies.append(
                webhook(
                    {"MessageType": "Authenticate", "UDID": udid, "SerialNumber": serial(i)},
                    "mdm.Authenticate",
                    None,
                )
            )
            bodies.append(
                webhook({"MessageType": "TokenUpdate", "UDID": udid}, "mdm.TokenUpdate", 1)
            )
        started = time.perf_counter()
        for body in bodies:
            await record_webhook(db, parse_webhook(body, EventSource.NANOMDM), NOW)
        ingest_seconds = time.perf_counter() - started
        # The same check-ins again: every one is a duplicate.
        started = time.perf_counter()
        for body in bodies[:1000]:
            await record_webhook(db, parse_webhook(body, EventSource.NANOMDM), NOW)
        repeat_seconds = time.perf_counter() - started

        page = [DeviceRecord.from_fields(serial(i), {}) for i in range(1000)]
        page_times = []
        for _ in range(5):
            started = time.perf_counter()
            await refresh_after_page(db, token_id, "sync", page)
            page_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        async with db.write() as session:
            await refresh_due(session, NOW + timedelta(hours=2))
        due_seconds = time.perf_counter() - started
        started = time.perf_counter()
        funnel = await enrollment_funnel(db, "bench")
        funnel_seconds = time.perf_counter() - started
        return {
            "backend": backend,
            "devices": count,
            "load_seconds": round(load_seconds, 2),
            "checkins": len(bodies),
            "checkins_per_second": round(len(bodies) / ingest_seconds, 1),
            "repeats_per_second": round(min(1000, len(bodies)) / repeat_seconds, 1),
            "page_refresh_1000_ms_median": round(statistics.median(page_times) * 1000, 1),
            "periodic_catch_up_ms": round(due_seconds * 1000, 1),
            "funnel_ms": round(funnel_seconds * 1000, 1),
            "enrolled": funnel.enrolled,
        }
    finally:
        await db.dispose()


def postgres_url() -> str:
    admin = create_engine(make_url(PG_ADMIN), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{PG_NAME}"'))
    admin.dispose()
    return make_url(PG_ADMIN).set(database=PG_NAME).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--checkins", type=int, default=2_000)
    args = parser.parse_args()
    results = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
            results.append(asyncio.run(run(url, "sqlite", args.devices, args.checkins)))
    if args.backend in ("postgresql", "both"):
        results.append(asyncio.run(run(postgres_url(), "postgresql", args.devices, args.checkins)))
    print(json.dumps({"benchmark": "enrollment", "results": results}, indent=2))


if __name__ == "__main__":
    main()
