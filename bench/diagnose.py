"""Benchmark: the whole ``adesync diagnose --stored --json`` process over 2,000 tokens and
1,000,000 devices, on SQLite and on PostgreSQL; and the live ``adesync diagnose --json`` (each
token checked with Apple) over 200 tokens against the simulator. Prints one JSON document with
the figures.

The data is bulk-inserted straight into the tables (sqlite3 ``executemany``, PostgreSQL
``COPY``), with a realistic mix: most tokens healthy, some expired, expiring, with unaccepted
terms, failing, throttled or without a default profile, one token over 200,000 devices,
devices without a profile on some tokens, thousands of failed assignments, five sync runs and
one certificate per token. Then the CLI runs as a
user runs it (a fresh process each time): ``adesync --version`` for start-up, and
``adesync diagnose --stored --json`` — the first run writes every token's state and findings,
later runs re-evaluate and update. Target: under 2 s per diagnose.

The live measurement starts ``adesync simulate`` as its own process with one MDM server per
token (a tenth of them in an organisation whose new terms are not accepted), stores the tokens
through the library (``seed_token``) and runs ``adesync diagnose --json``: every token is
checked (``/session`` + ``/account``, 8 at a time), then everything is re-evaluated. It counts
the calls the simulator answered.

    python bench/diagnose.py [--backend sqlite|postgresql|both] [--tokens N] [--devices N]
        [--live-tokens N (200; 0 skips it)]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PG_ADMIN = os.environ.get("ADESYNC_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_NAME = "adesync_bench_diagnose"
ADESYNC = [sys.executable, "-m", "adesync.cli"]
NOW = datetime.now(UTC).replace(microsecond=0)

DEVICE_COLUMNS = (
    "token_id", "serial_number", "model", "os", "device_family", "profile_status",
    "profile_uuid", "deleted", "last_op_type", "last_op_date", "first_seen_at", "updated_at",
)  # fmt: skip
TOKEN_COLUMNS = (
    "id", "name", "token_type", "dep_url", "oauth_credentials", "access_token_expiry",
    "token_added_at", "server_uuid", "server_name", "org_name", "admin_id",
    "active_certificates", "last_sync_at", "last_successful_sync_at", "default_profile_uuid",
    "last_error_code", "last_error_status", "last_error_at", "consecutive_failures",
    "failing_since", "throttled_until", "terms_not_accepted", "token_rejected", "access_denied",
    "created_at", "updated_at",
)  # fmt: skip


def certificates(count: int) -> list[str]:
    """One small certificate per token, most valid for years, some ending soon."""
    key = ec.generate_private_key(ec.SECP256R1())
    made = []
    for index in range(count):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"adesync-{index}")])
        days = 40 if index % 97 == 0 else 1500
        made.append(
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(index + 1)
            .not_valid_before(NOW - timedelta(days=300))
            .not_valid_after(NOW + timedelta(days=days))
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
            .decode()
        )
    return made


def token_rows(count: int) -> list[dict[str, Any]]:
    """Tokens in many states (deterministic)."""
    pems = certificates(count)
    rows = []
    for i in range(count):
        row: dict[str, Any] = {
            "id": i + 1,
            "name": f"token-{i:04d}",
            "token_type": "asm" if i % 3 == 0 else "abm",
            "dep_url": "https://mdmenrollment.apple.com",
            "oauth_credentials": b"sealed",
            "access_token_expiry": NOW + timedelta(days=100 + i % 200),
            "token_added_at": NOW - timedelta(days=200),
            "server_uuid": f"{i:032X}",
            "server_name": f"MDM {i}",
            "org_name": f"Organisation {i % 700}",
            "admin_id": f"ade{i}@gmail.com" if i % 50 == 0 else f"ade{i}@school{i}.example",
            "active_certificates": pems[i],
            "last_sync_at": NOW - timedelta(minutes=5),
            "last_successful_sync_at": NOW - timedelta(minutes=5),
            "default_profile_uuid": None if i % 40 == 0 else f"P{i:031d}",
            "last_error_code": None,
            "last_error_status": None,
            "last_error_at": None,
            "consecutive_failures": 0,
            "failing_since": None,
            "throttled_until": None,
            "terms_not_accepted": False,
            "token_rejected": False,
            "access_denied": False,
            "created_at": NOW - timedelta(days=200),
            "updated_at": NOW,
        }
        if i % 25 == 1:
            row["access_token_expiry"] = NOW - timedelta(days=3)
        elif i % 25 == 2:
            row["access_token_expiry"] = NOW + timedelta(days=9)
        elif i % 25 == 3:
            row.update(
                terms_not_accepted=True,
                last_error_code="terms_not_accepted",
                last_error_status=403,
                last_error_at=NOW - timedelta(hours=2),
                consecutive_failures=3,
                failing_since=NOW - timedelta(hours=30),
                last_successful_sync_at=NOW - timedelta(hours=30),
            )
        elif i % 25 == 4:
            row.update(
                last_error_code="apple_unavailable",
                last_error_status=503,
                last_error_at=NOW - timedelta(minutes=10),
                consecutive_failures=2,
                failing_since=NOW - timedelta(hours=1),
            )
        elif i % 25 == 5:
            row["throttled_until"] = NOW + timedelta(minutes=30)
        rows.append(row)
    return rows


def device_counts(tokens: int, devices: int) -> list[int]:
    """One token over Apple's 200,000, the rest shared out evenly."""
    big = min(210_000, devices // 2)
    rest = devices - big
    share, extra = divmod(rest, tokens - 1)
    return [big] + [share + (1 if i < extra else 0) for i in range(tokens - 1)]


def devices(tokens: int, count: int) -> Iterator[tuple[Any, ...]]:
    """Devices as a working installation has them: nearly all with a profile pushed; tokens
    without a default profile (every 40th) have 2% without one, every 20th token a few whose
    profile was removed; 0.5% released (deleted)."""
    rng = random.Random(7)
    models = ("iPad", "iPhone", "Mac", "Apple TV")
    for index, amount in enumerate(device_counts(tokens, count)):
        token_id = index + 1
        bare_share = 0.02 if index % 40 == 0 else 0.005 if index % 20 == 7 else 0.0
        for n in range(amount):
            roll = rng.random()
            status = "pushed"
            if roll < bare_share:
                status = "empty" if index % 40 == 0 else "removed"
            yield (
                token_id,
                f"B{index:04d}{n:07d}",
                models[n % 4],
                "iOS",
                models[n % 4],
                status,
                None if status in ("empty", "removed") else f"P{index:031d}",
                roll > 0.995,
                "modified",
                NOW - timedelta(days=n % 300),
                NOW - timedelta(days=300),
                NOW - timedelta(days=1),
            )


def assignment_rows(tokens: int) -> Iterator[tuple[Any, ...]]:
    """Failed, not accessible and throttled answers for a few thousand serials."""
    counts = device_counts(tokens, 1)  # only token indexes matter here
    for index in range(0, len(counts), 10):
        for n in range(20):
            status = ("NOT_ACCESSIBLE", "FAILED", "THROTTLED")[n % 3]
            next_at = NOW + timedelta(minutes=5) if status != "NOT_ACCESSIBLE" else None
            yield (index + 1, f"B{index:04d}{n:07d}", "P1", status, 1, NOW, next_at)


ASSIGNMENT_COLUMNS = (
    "token_id", "serial_number", "profile_uuid", "status", "attempts", "last_attempt_at",
    "next_attempt_at",
)  # fmt: skip
RUN_COLUMNS = (
    "token_id", "kind", "trigger", "started_at", "finished_at", "pages", "added", "modified",
    "deleted", "assigned", "outcome", "cursor_recovered",
)  # fmt: skip


def run_rows(tokens: int) -> Iterator[tuple[Any, ...]]:
    for i in range(tokens):
        for back in range(5):
            started = NOW - timedelta(minutes=30 * back + 6)
            yield (
                i + 1, "sync", "schedule", started, started + timedelta(seconds=3), 1, 0, 2, 0,
                0, "ok", back == 0 and i % 100 == 7,
            )  # fmt: skip


def cli(env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    """Run ``adesync ARGS`` in a fresh process; returns its wall time and result."""
    started = time.perf_counter()
    done = subprocess.run([*ADESYNC, *args], env=env, capture_output=True, check=False)
    return time.perf_counter() - started, done


def cpu_seconds() -> float:
    """CPU time used by finished child processes so far (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def prepare_sqlite(home: Path, env: dict[str, str], tokens: int, count: int) -> None:
    _, done = cli(env, "init")
    assert done.returncode == 0, done.stderr.decode()
    conn = sqlite3.connect(home / "adesync.db")

    def stamp(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    def insert(table: str, columns: tuple[str, ...], rows: Any) -> None:
        marks = ", ".join("?" for _ in columns)
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
            ([stamp(v) for v in row] for row in rows),
        )

    insert(
        "tokens",
        TOKEN_COLUMNS,
        (tuple(row[c] for c in TOKEN_COLUMNS) for row in token_rows(tokens)),
    )
    insert("devices", DEVICE_COLUMNS, devices(tokens, count))
    insert("assignments", ASSIGNMENT_COLUMNS, assignment_rows(tokens))
    insert("sync_runs", RUN_COLUMNS, run_rows(tokens))
    conn.execute(
        "INSERT INTO worker_heartbeats VALUES ('bench', 'worker', 'localhost', 1, 4, ?, ?)",
        (stamp(NOW), stamp(NOW)),
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


def prepare_postgresql(env: dict[str, str], tokens: int, count: int) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{PG_NAME}"')
    _, done = cli(env, "init")
    assert done.returncode == 0, done.stderr.decode()
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_NAME}"
    with psycopg.connect(url) as conn:

        def copy(table: str, columns: tuple[str, ...], rows: Any) -> None:
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as target,
            ):
                for row in rows:
                    target.write_row(row)

        copy(
            "tokens",
            TOKEN_COLUMNS,
            (tuple(row[c] for c in TOKEN_COLUMNS) for row in token_rows(tokens)),
        )
        copy("devices", DEVICE_COLUMNS, devices(tokens, count))
        copy("assignments", ASSIGNMENT_COLUMNS, assignment_rows(tokens))
        copy("sync_runs", RUN_COLUMNS, run_rows(tokens))
        conn.execute(
            "INSERT INTO worker_heartbeats VALUES ('bench', 'worker', 'localhost', 1, 4, %s, %s)",
            (NOW, NOW),
        )
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def measure(backend: str, tokens: int, count: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="adesync-bench-") as directory:
        home = Path(directory)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADESYNC_")}
        env["ADESYNC_HOME"] = str(home)
        if backend == "postgresql":
            env["ADESYNC_DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_NAME}"
        started = time.perf_counter()
        if backend == "sqlite":
            prepare_sqlite(home, env, tokens, count)
        else:
            prepare_postgresql(env, tokens, count)
        load_seconds = time.perf_counter() - started
        startup, startup_cpu = [], []
        for _ in range(5):
            before = cpu_seconds()
            startup.append(cli(env, "--version")[0])
            startup_cpu.append(cpu_seconds() - before)
        timings, cpu, codes, sizes, findings = [], [], [], [], 0
        for _ in range(runs):
            before = cpu_seconds()
            seconds, done = cli(env, "diagnose", "--stored", "--json")
            cpu.append(cpu_seconds() - before)
            if done.returncode not in (0, 1, 2):
                raise SystemExit(done.stderr.decode())
            report = json.loads(done.stdout)
            timings.append(seconds)
            codes.append(done.returncode)
            sizes.append(len(done.stdout))
            findings = len(report["findings"])
        return {
            "mode": "stored",
            "backend": backend,
            "tokens": tokens,
            "devices": count,
            "load_seconds": round(load_seconds, 1),
            "startup_seconds_median": round(statistics.median(startup), 3),
            "startup_cpu_seconds_median": round(statistics.median(startup_cpu), 3),
            "diagnose_first_seconds": round(timings[0], 3),
            "diagnose_cpu_seconds_median": round(statistics.median(cpu[1:] or cpu), 3),
            "diagnose_seconds_median": round(statistics.median(timings[1:] or timings), 3),
            "diagnose_seconds_max": round(max(timings[1:] or timings), 3),
            "exit_code": codes[-1],
            "findings": findings,
            "alerted_tokens": len((report["alert"] or {}).get("affected_tokens", [])),
            "json_bytes": sizes[-1],
            "target_seconds": 2.0,
            "met": max(timings) < 2.0,
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }


def create_servers(base_url: str, count: int) -> list[dict[str, str]]:
    """``count`` MDM servers without devices, every tenth in an organisation with new terms to
    accept; their OAuth values."""
    import httpx

    found = []
    with httpx.Client(base_url=f"{base_url}/_sim", timeout=60) as admin:
        pending = admin.post("/orgs", json={"name": "Terms School", "terms_pending": True})
        pending.raise_for_status()
        for n in range(count):
            body: dict[str, Any] = {"name": f"MDM {n:05d}", "devices": 0}
            if n % 10 == 9:
                body["org_id"] = pending.json()["org_id"]
            answer = admin.post("/servers", json=body)
            answer.raise_for_status()
            uuid_ = answer.json()["server_uuid"]
            found.append(admin.get(f"/servers/{uuid_}/credentials").json())
    return found


def apple_calls(base_url: str) -> int:
    import httpx

    with httpx.Client(base_url=f"{base_url}/_sim", timeout=60) as admin:
        return sum(admin.get("/state").json()["requests"].values())


async def seed_tokens(base_url: str, credentials: list[dict[str, str]]) -> None:
    from adesync.config import load_settings
    from adesync.runtime import open_runtime
    from adesync.services import tokens as token_service
    from adesync.tokens import TokenPayload, generate_keypair

    keypair = generate_keypair("bench")  # one key pair for all: nothing decrypts here
    async with open_runtime(load_settings()) as rt:
        for n, values in enumerate(credentials):
            payload = TokenPayload.from_mapping(values)
            await token_service.seed_token(
                rt.db, rt.box, f"t{n:05d}", payload, keypair, dep_url=base_url
            )


def measure_live(backend: str, tokens: int, runs: int) -> dict[str, Any]:
    """The live diagnose of ``tokens`` tokens against the simulator (its own process)."""
    import asyncio

    from simulator_process import simulator

    with (
        tempfile.TemporaryDirectory(prefix="adesync-bench-") as directory,
        simulator(12) as base_url,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADESYNC_")}
        env.update(ADESYNC_HOME=directory, ADESYNC_LOG_LEVEL="WARNING")
        if backend == "postgresql":
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}_live" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{PG_NAME}_live"')
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_NAME}_live"
            env["ADESYNC_DATABASE_URL"] = url.replace("postgresql://", "postgresql+psycopg://")
        _, done = cli(env, "init")
        assert done.returncode == 0, done.stderr.decode()
        credentials = create_servers(base_url, tokens)
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            asyncio.run(seed_tokens(base_url, credentials))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        timings, cpu, calls, codes = [], [], [], []
        report: dict[str, Any] = {}
        for _ in range(runs):
            before, answered = cpu_seconds(), apple_calls(base_url)
            seconds, done = cli(env, "diagnose", "--json")
            cpu.append(cpu_seconds() - before)
            calls.append(apple_calls(base_url) - answered)
            if done.returncode not in (0, 1, 2):
                raise SystemExit(done.stderr.decode())
            report = json.loads(done.stdout)
            timings.append(seconds)
            codes.append(done.returncode)
        stored_seconds, _ = cli(env, "diagnose", "--stored", "--json")
        reasons = [t["state_reason"] for t in report["tokens"]]
        return {
            "mode": "live",
            "backend": backend,
            "tokens": tokens,
            "concurrency": 8,
            "diagnose_first_seconds": round(timings[0], 3),
            "diagnose_seconds_median": round(statistics.median(timings), 3),
            "diagnose_seconds_max": round(max(timings), 3),
            "diagnose_cpu_seconds_median": round(statistics.median(cpu), 3),
            "apple_calls_per_run": calls,
            "exit_code": codes[-1],
            "tokens_in_error": sum(1 for t in report["tokens"] if t["state"] == "error"),
            "terms_not_accepted": reasons.count("terms_not_accepted"),
            "stored_diagnose_seconds_after": round(stored_seconds, 3),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--live-tokens", type=int, default=200)
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = [measure(b, args.tokens, args.devices, args.runs) for b in backends]
    if args.live_tokens:
        results += [measure_live(b, args.live_tokens, 3) for b in backends]
    json.dump({"benchmark": "diagnose", "results": results}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
