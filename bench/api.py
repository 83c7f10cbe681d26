"""p95 latency of the token list and device list pages on SQLite, 20 concurrent clients.

Seeds a SQLite home with 2,000 tokens and 1,000,000 devices (500 per token), starts
``adesync serve --no-scheduler`` in a subprocess on a loopback port, and times, for each of:
the API token list (a page of 100 of the 2,000 tokens), the console token list page (the same
page as HTML, signed in), the API device list (a page of 100, keyset, over all 1,000,000) and
the API device list of one token — 20 clients at once. Prints one JSON document; the target is
a p95 under 100 ms. On Linux each measurement also gives the CPU per request of the server
processes and of this load generator (they share the machine), and the machine's load: CPU
other processes used during the measurement shows the figures were taken on a busy machine.

    .venv/bin/python bench/api.py [--tokens 2000] [--devices 1000000] [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from adesync.commands.admin import initialise
from adesync.config import Settings
from adesync.runtime import open_runtime
from adesync.web import accounts
from adesync.web.roles import Role

CLIENTS = 20
TARGET_MS = 100.0
BENCH_PASSWORD = "bench-password-1"  # noqa: S105 (a throwaway home)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


async def prepare(home: Path) -> tuple[str, str]:
    settings = Settings(home=home)
    await initialise(settings)
    async with open_runtime(settings) as rt:
        sealed = rt.box.seal_text('{"bench": true}')
        _, key = await accounts.create_api_key(rt.db, "bench", Role.VIEWER, actor="bench")
        await accounts.add_user(rt.db, "bench", Role.VIEWER, actor="bench", password=BENCH_PASSWORD)
    return key, sealed.hex()


def seed(path: Path, tokens: int, devices: int, sealed_hex: str) -> None:
    now = datetime.now(UTC)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    sealed = bytes.fromhex(sealed_hex)
    states = ["healthy"] * 8 + ["warning", "error"]
    conn.executemany(
        "INSERT INTO tokens (name, token_type, dep_url, oauth_credentials, access_token_expiry,"
        " org_name, server_uuid, state, state_reason, last_sync_at, last_successful_sync_at,"
        " consecutive_failures, terms_not_accepted, token_rejected, access_denied,"
        " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,0,0,0,0,?,?)",
        [
            (
                f"token-{i:05d}",
                "abm",
                "http://127.0.0.1:9",
                sealed,
                iso(now + timedelta(days=random.randint(-10, 365))),
                f"Organisation {i % 97}",
                f"{i:032X}",
                states[i % 10],
                None if states[i % 10] == "healthy" else "token_expiring",
                iso(now),
                iso(now),
                iso(now),
                iso(now),
            )
            for i in range(tokens)
        ],
    )
    ids = [row[0] for row in conn.execute("SELECT id FROM tokens ORDER BY id")]
    per_token = devices // tokens
    statuses = ["assigned", "pushed", "empty", "removed"]
    batch: list[tuple[object, ...]] = []
    for n in range(devices):
        token_id = ids[min(n // per_token, len(ids) - 1)]
        batch.append(
            (
                token_id,
                f"C{n:011d}",
                "iPad (10th generation)",
                "IPAD WI-FI 64GB",
                "iPadOS",
                "iPad",
                statuses[n % 4],
                iso(now),
                iso(now),
            )
        )
        if len(batch) == 50_000:
            _insert_devices(conn, batch)
            batch.clear()
    if batch:
        _insert_devices(conn, batch)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


def _insert_devices(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    conn.executemany(
        "INSERT INTO devices (token_id, serial_number, model, description, os, device_family,"
        " profile_status, deleted, first_seen_at, updated_at) VALUES (?,?,?,?,?,?,?,0,?,?)",
        rows,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if server.poll() is not None:
                raise SystemExit("adesync serve exited before it was ready")
            try:
                if (await client.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("adesync serve did not become ready")


async def sign_in(client: httpx.AsyncClient, base: str) -> None:
    page = await client.get(f"{base}/login")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert token is not None
    answer = await client.post(
        f"{base}/login",
        data={"username": "bench", "password": BENCH_PASSWORD, "csrf_token": token.group(1)},
    )
    assert answer.status_code == 303, answer.text


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) of ``pid`` and its descendants; 0 off Linux."""
    proc = Path(f"/proc/{pid}")
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        children = (proc / "task" / str(pid) / "children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) for child in children)


def machine_busy_seconds() -> float:
    """CPU seconds all processes used since boot (0 off Linux)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    except OSError:
        return 0.0
    idle = values[3] + values[4]
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK")


async def measure(
    name: str,
    make_url: list[str],
    headers: dict[str, str],
    requests: int,
    base: str,
    console: bool = False,
    server_pid: int | None = None,
) -> dict[str, object]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(make_url[i % len(make_url)])

    async def client_loop() -> None:
        nonlocal errors
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:
            if console:
                await sign_in(client, base)
            while True:
                try:
                    url = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                answer = await client.get(url)
                latencies.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    errors += 1

    server_before = cpu_seconds(server_pid) if server_pid else 0.0
    client_before = time.process_time()
    machine_before = machine_busy_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - started
    server_cpu = (cpu_seconds(server_pid) if server_pid else 0.0) - server_before
    client_cpu = time.process_time() - client_before
    other_cpu = machine_busy_seconds() - machine_before - server_cpu - client_cpu
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    return {
        "name": name,
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(latencies[-1], 1),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "meets_target": p95 < TARGET_MS and errors == 0,
        "server_cpu_ms_per_request": round(server_cpu * 1000 / len(latencies), 2),
        "client_cpu_ms_per_request": round(client_cpu * 1000 / len(latencies), 2),
        # CPUs' worth of other processes' work while this ran (2.0 = both of 2 CPUs busy).
        "other_processes_cpus": round(max(other_cpu, 0.0) / elapsed, 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=400, help="per measurement")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="serve processes")
    args = parser.parse_args()
    random.seed(1)
    with tempfile.TemporaryDirectory(prefix="adesync-bench-") as folder:
        home = Path(folder)
        key, sealed = await prepare(home)
        seeding = time.perf_counter()
        seed(home / "adesync.db", args.tokens, args.devices, sealed)
        seed_seconds = time.perf_counter() - seeding
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "ADESYNC_HOME": str(home), "ADESYNC_LOG_LEVEL": "WARNING"}
        env.pop("ADESYNC_DATABASE_URL", None)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adesync.cli",
                "serve",
                "--no-scheduler",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await wait_ready(base, server)
            auth = {"Authorization": f"Bearer {key}"}
            names = [f"token-{i:05d}" for i in range(0, args.tokens, 100)]
            token_pages = [f"{base}/api/v1/tokens?limit=100"] + [
                f"{base}/api/v1/tokens?limit=100&after={name}" for name in names[1:]
            ]
            console_pages = [f"{base}/tokens"] + [
                f"{base}/tokens?after={name}" for name in names[1:]
            ]
            device_pages = [
                f"{base}/api/v1/devices?limit=100&after={random.randrange(args.devices)}"
                for _ in range(200)
            ]
            per_token = [
                f"{base}/api/v1/devices?limit=100&token=token-{random.randrange(args.tokens):05d}"
                for _ in range(200)
            ]
            # Warm the server (connections, SQLite page cache) before timing.
            await measure("warm-up", token_pages + device_pages, auth, 100, base)
            pid = server.pid
            load_before = os.getloadavg()
            results = [
                await measure(
                    "api_token_list_page", token_pages, auth, args.requests, base, False, pid
                ),
                await measure(
                    "console_token_list_page", console_pages, {}, args.requests, base, True, pid
                ),
                await measure(
                    "api_device_list_page", device_pages, auth, args.requests, base, False, pid
                ),
                await measure(
                    "api_device_list_by_token", per_token, auth, args.requests, base, False, pid
                ),
            ]
            load_after = os.getloadavg()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(
        json.dumps(
            {
                "benchmark": "api",
                "backend": "sqlite",
                "tokens": args.tokens,
                "devices": args.devices,
                "clients": CLIENTS,
                "serve_workers": args.workers,
                "cpus": os.cpu_count(),
                "target_p95_ms": TARGET_MS,
                "seed_seconds": round(seed_seconds, 1),
                "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
