"""Many tokens: 2,000 tokens × 100 devices on PostgreSQL, synced by 4 ``adesync worker``s.

``adesync simulate`` runs as its own process with one MDM server per token; the tokens are
stored through the library (``seed_token``) with each server's OAuth values, all due at once.
Four ``adesync worker`` processes then sync them; the clock runs from starting the workers until
every token has a successful run. Prints one JSON document: total wall time and tokens/s, also
counted from the first run's start to the last run's end (without the workers' start-up), and
the run durations.

    /work/venv/bin/python bench/sync_tokens.py [--tokens 2000] [--devices 100] [--workers 4]
        [--concurrency 4] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from simulator_process import simulator

PG_URL = os.environ.get(
    "ADESYNC_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def database(postgres_url: str) -> Iterator[str]:
    admin_url = make_url(postgres_url).set(drivername="postgresql+psycopg")
    name = f"adesync_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def create_servers(base_url: str, count: int, devices: int) -> list[dict[str, str]]:
    """``count`` MDM servers of ``devices`` devices each; their OAuth values."""
    found = []
    with httpx.Client(base_url=f"{base_url}/_sim", timeout=60) as admin:
        for n in range(count):
            answer = admin.post("/servers", json={"name": f"MDM {n:05d}", "devices": devices})
            answer.raise_for_status()
            uuid_ = answer.json()["server_uuid"]
            found.append(admin.get(f"/servers/{uuid_}/credentials").json())
    return found


async def seed(base_url: str, credentials: list[dict[str, str]]) -> None:
    from adesync.commands.admin import initialise
    from adesync.config import load_settings
    from adesync.runtime import open_runtime
    from adesync.services import tokens as token_service
    from adesync.tokens import TokenPayload, generate_keypair

    settings = load_settings()
    await initialise(settings)
    keypair = generate_keypair("bench")  # one key pair for all: nothing decrypts here
    async with open_runtime(settings) as rt:
        for n, values in enumerate(credentials):
            payload = TokenPayload.from_mapping(values)
            await token_service.seed_token(
                rt.db, rt.box, f"t{n:05d}", payload, keypair, dep_url=base_url
            )


async def synced(tokens: int) -> int:
    from adesync.runtime import open_runtime
    from adesync.store.tables_sync import sync_runs

    async with open_runtime() as rt, rt.db.read() as session:
        query = select(func.count(func.distinct(sync_runs.c.token_id))).where(
            sync_runs.c.outcome == "ok"
        )
        return int((await session.execute(query)).scalar_one())


async def run_figures() -> dict[str, Any]:
    from adesync.runtime import open_runtime
    from adesync.store.tables_sync import sync_runs

    async with open_runtime() as rt, rt.db.read() as session:
        rows = list(
            await session.execute(
                select(
                    sync_runs.c.started_at,
                    sync_runs.c.finished_at,
                    sync_runs.c.duration_ms,
                    sync_runs.c.outcome,
                    sync_runs.c.added,
                )
            )
        )
    ok = [r for r in rows if r.outcome == "ok"]
    durations = sorted(r.duration_ms for r in ok)
    span = (max(r.finished_at for r in ok) - min(r.started_at for r in ok)).total_seconds()
    return {
        "runs": len(rows),
        "runs_not_ok": len(rows) - len(ok),
        "devices_added": sum(r.added for r in ok),
        "first_start_to_last_finish_seconds": round(span, 2),
        "run_ms_median": statistics.median(durations),
        "run_ms_p95": durations[int(len(durations) * 0.95) - 1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--postgres-url", default=PG_URL)
    args = parser.parse_args()
    document: dict[str, Any] = {
        "benchmark": "sync_tokens",
        "tokens": args.tokens,
        "devices_per_token": args.devices,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with (
        simulator(12) as base_url,
        database(args.postgres_url) as url,
        tempfile.TemporaryDirectory(prefix="adesync-bench-") as home,
    ):
        for name in [n for n in os.environ if n.startswith("ADESYNC_")]:
            del os.environ[name]
        os.environ.update(ADESYNC_HOME=home, ADESYNC_DATABASE_URL=url, ADESYNC_LOG_LEVEL="WARNING")
        credentials = create_servers(base_url, args.tokens, args.devices)
        asyncio.run(seed(base_url, credentials))
        start = time.perf_counter()
        command = [sys.executable, "-m", "adesync.cli", "worker"]
        command += ["--concurrency", str(args.concurrency)]
        workers = [
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(args.workers)
        ]
        try:
            while asyncio.run(synced(args.tokens)) < args.tokens:
                if any(w.poll() is not None for w in workers):
                    raise SystemExit("a worker stopped before every token was synced")
                time.sleep(0.25)
            wall = time.perf_counter() - start
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            cpu = 0.0
            for worker in workers:
                # wait4 reports this child's own CPU time (user + system).
                _, status, usage = os.wait4(worker.pid, 0)
                worker.returncode = os.waitstatus_to_exitcode(status)
                cpu += usage.ru_utime + usage.ru_stime
        figures = asyncio.run(run_figures())
        document["workers_cpu_seconds"] = round(cpu, 1)
        document["worker_cpu_ms_per_token"] = round(cpu / args.tokens * 1000, 1)
    document["wall_seconds"] = round(wall, 2)
    document["tokens_per_second"] = round(args.tokens / wall, 1)
    document["tokens_per_second_without_startup"] = round(
        args.tokens / figures["first_start_to_last_finish_seconds"], 1
    )
    document.update(figures)
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
