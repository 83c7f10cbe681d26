"""Sync engine throughput: a full fetch of 200,000 devices, with and without a default profile,
then an incremental sync of 2,000 changes, on SQLite and on PostgreSQL.

``adesync simulate`` runs as its own process and serves every page (1000 devices) over loopback
HTTP; each sync is ``adesync sync NAME --force --json`` as a child process, timed from outside
(process wall time, including Python start-up) and from inside (the run's own duration as
recorded in ``sync_runs``), with its peak RSS; then the same full fetch again (every device
stored and unchanged). Two more fetches run in this process with timers
around the Apple calls, page validation, ``SyncRepo.commit_page``, the page hooks and the
assigner, to show where the time goes: one as ``adesync sync`` runs, one without the hooks
other features register per committed page (the sync engine alone). Prints one JSON document.

    /work/venv/bin/python bench/sync_fetch.py [--devices 200000] [--changes 2000]
        [--backend sqlite --backend postgresql] [--postgres-url URL] [--fetch-only]

Targets (issue 6): ≥20,000 devices/s on SQLite, ≥15,000 on PostgreSQL, peak RSS < 250 MB,
2,000 changes in < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pydantic_core
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from simulator_process import simulator

PG_URL = os.environ.get(
    "ADESYNC_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PROFILE = {
    "profile_name": "Bench",
    "url": "https://mdm.example.com/enroll",
    "is_supervised": True,
    "is_mandatory": True,
}


# -- the simulator, as its own process -------------------------------------------------------


def create_server(base_url: str, name: str, devices: int, certificate_pem: str) -> str:
    """An MDM server with ``devices`` devices; returns its ``.p7m`` (base64)."""
    answer = httpx.post(
        f"{base_url}/_sim/servers",
        json={"name": name, "devices": devices, "certificate_pem": certificate_pem},
        timeout=120,
    )
    answer.raise_for_status()
    p7m: str = answer.json()["token_p7m"]
    return p7m


def server_uuid(base_url: str, name: str) -> str:
    servers = httpx.get(f"{base_url}/_sim/servers", timeout=60).json()
    return str(next(s["server_uuid"] for s in servers if s["server_name"] == name))


def change_devices(base_url: str, name: str, changes: int) -> None:
    """Half new devices, half modified ones (a new colour)."""
    uuid_ = server_uuid(base_url, name)
    admin = httpx.Client(base_url=f"{base_url}/_sim/servers/{uuid_}", timeout=120)
    with admin:
        admin.post("/devices", json={"count": changes // 2}).raise_for_status()
        serials = [d["serial_number"] for d in admin.get("/devices?limit=10000").json()]
        modified = [{"serial_number": s, "color": "BENCH RED"} for s in serials[: changes // 2]]
        admin.patch("/devices", json={"devices": modified}).raise_for_status()


# -- an installation per backend -------------------------------------------------------------


@contextmanager
def installation(backend: str, postgres_url: str) -> Iterator[dict[str, str]]:
    """ADESYNC_* for a fresh home on ``backend`` (a database of its own on PostgreSQL)."""
    with tempfile.TemporaryDirectory(prefix="adesync-bench-") as home:
        env = {"ADESYNC_HOME": home, "ADESYNC_LOG_LEVEL": "WARNING"}
        if backend == "sqlite":
            yield env
            return
        admin_url = make_url(postgres_url).set(drivername="postgresql+psycopg")
        name = f"adesync_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = admin_url.set(database=name).render_as_string(hide_password=False)
            yield {**env, "ADESYNC_DATABASE_URL": url}
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def use(env: dict[str, str]) -> None:
    for name in [n for n in os.environ if n.startswith("ADESYNC_")]:
        del os.environ[name]
    os.environ.update(env)


async def setup_tokens(base_url: str, names: dict[str, int]) -> None:
    """``adesync init``, then per name: a key pair, an MDM server for its certificate with that
    many devices, and the token file added (as ``tokens keypair`` + ABM + ``tokens add`` do)."""
    from adesync.commands.admin import initialise
    from adesync.config import load_settings
    from adesync.runtime import open_runtime
    from adesync.services import tokens as token_service

    settings = load_settings()
    await initialise(settings)
    async with open_runtime(settings) as rt:
        for name, devices in names.items():
            certificate = await token_service.keypair_certificate(rt.db, rt.box, name)
            p7m = create_server(base_url, name, devices, certificate.certificate_pem)
            await token_service.add_token(
                rt.db, rt.box, name, base64.b64decode(p7m), dep_url=base_url
            )


async def last_run(name: str) -> dict[str, Any]:
    from adesync.runtime import open_runtime
    from adesync.store.tables import tokens
    from adesync.store.tables_sync import sync_runs

    async with open_runtime() as rt, rt.db.read() as session:
        row = (
            await session.execute(
                select(sync_runs)
                .join(tokens, tokens.c.id == sync_runs.c.token_id)
                .where(tokens.c.name == name)
                .order_by(sync_runs.c.id.desc())
                .limit(1)
            )
        ).one()
    return dict(row._mapping)


# -- a sync as a child process ---------------------------------------------------------------


def vm_hwm_mb(pid: int) -> float:
    """The process's peak resident set so far (VmHWM), in MB; 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started (on SQLite, the page writer)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def cli_sync(*args: str) -> tuple[dict[str, Any], float, float, float, float]:
    """``adesync sync ARGS --json``: (its report, wall seconds, CPU seconds, peak RSS in MB,
    peak RSS of the processes it started in MB).

    The peak is read from /proc while the process runs: ru_maxrss would also count the memory
    of this (larger) process, which the child shares between fork and exec. The CPU seconds
    include those of the processes it started and waited for (the page writer).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "adesync.cli", "sync", *args, "--json"], stdout=out, stderr=err
        )
        peak = 0.0
        started: dict[int, float] = {}
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, vm_hwm_mb(process.pid))
            for child in child_pids(process.pid):
                started[child] = max(started.get(child, 0.0), vm_hwm_mb(child))
            time.sleep(0.02)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"adesync sync {' '.join(args)} failed: {err.read()[-2000:]!r}")
        (report,) = json.loads(out.read())
    return report, wall, usage.ru_utime + usage.ru_stime, peak, max(started.values(), default=0.0)


def figures(
    report: dict[str, Any],
    run: dict[str, Any],
    wall: float,
    cpu: float,
    rss: float,
    child_rss: float,
) -> dict[str, Any]:
    # Every device a page carried (``unchanged`` is absent from reports before it was counted).
    unchanged = report.get("unchanged", 0)
    devices = report["added"] + report["modified"] + report["deleted"] + unchanged
    seconds = run["duration_ms"] / 1000
    return {
        "outcome": report["outcome"],
        "kind": report["kind"],
        "pages": report["pages"],
        "added": report["added"],
        "modified": report["modified"],
        "deleted": report["deleted"],
        "unchanged": unchanged,
        "assigned": report["assigned"],
        "run_seconds": round(seconds, 3),
        "devices_per_second": round(devices / seconds) if seconds else None,
        "process_seconds": round(wall, 3),
        "process_devices_per_second": round(devices / wall),
        "process_cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(rss, 1),
        # The page writer (SQLite): its own process, with its own 64 MiB page cache.
        "writer_peak_rss_mb": round(child_rss, 1),
    }


# -- where the time goes, in this process ----------------------------------------------------


def timed(
    spent: defaultdict[str, float], key: str, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - start

    return wrapper


async def breakdown(name: str, *, page_hooks_on: bool = True) -> dict[str, Any]:
    """A full fetch of ``name`` in this process with timers around each stage (without the
    hooks other features register per committed page unless ``page_hooks_on``)."""
    import adesync.apple.client as client_module
    from adesync.apple import AppleClient, DevicePage
    from adesync.runtime import open_runtime
    from adesync.store.sync_repo import SyncRepo
    from adesync.sync import hooks
    from adesync.sync.assigner import Assigner
    from adesync.sync.service import SyncService, token_ids_by_name
    from adesync.wiring import install

    install()
    spent: defaultdict[str, float] = defaultdict(float)
    sample: list[bytes] = []
    call, parse = AppleClient._call, client_module._parse

    async def timed_call(self: AppleClient, method: str, endpoint: str, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            response = await call(self, method, endpoint, **kw)
        finally:
            if endpoint in ("/server/devices", "/devices/sync"):
                spent["http"] += time.perf_counter() - start
        if endpoint == "/server/devices" and not sample:
            sample.append(response.content)
        return response

    def timed_parse(model: Any, response: Any, endpoint: str) -> Any:
        start = time.perf_counter()
        try:
            return parse(model, response, endpoint)
        finally:
            if model is DevicePage:
                spent["validate_json"] += time.perf_counter() - start

    commit_page, assign, page_hooks = (
        SyncRepo.commit_page,
        Assigner.assign,
        hooks.ON_PAGE_COMMITTED[:],
    )
    AppleClient._call = timed_call  # type: ignore[method-assign]
    client_module._parse = timed_parse
    SyncRepo.commit_page = timed(spent, "database", commit_page)  # type: ignore[method-assign,assignment]
    Assigner.assign = timed(spent, "assign", assign)  # type: ignore[method-assign,assignment]
    hooks.ON_PAGE_COMMITTED[:] = (
        [timed(spent, "page_hooks", h) for h in page_hooks] if page_hooks_on else []
    )
    try:
        async with open_runtime() as rt:
            service = SyncService(rt.db, rt.box, rt.settings)
            ((token_id, _),) = await token_ids_by_name(rt.db, [name])
            start = time.perf_counter()
            report = await service.sync_now(token_id, force=True)
            total = time.perf_counter() - start
    finally:
        AppleClient._call = call  # type: ignore[method-assign]
        client_module._parse = parse
        SyncRepo.commit_page = commit_page  # type: ignore[method-assign]
        Assigner.assign = assign  # type: ignore[method-assign]
        hooks.ON_PAGE_COMMITTED[:] = page_hooks
    devices = report.added + report.modified + report.unchanged
    # The share of JSON decoding in validate_json: the same parser alone on a page's bytes.
    page = sample[0]
    start = time.perf_counter()
    for _ in range(20):
        pydantic_core.from_json(page)
    decode = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(20):
        DevicePage.model_validate_json(page)
    whole = time.perf_counter() - start
    len_page = len(DevicePage.model_validate_json(page).devices)
    stages = {
        "http": spent["http"],
        "json_decode_and_validation": spent["validate_json"],
        "database_commit_page": spent["database"],
        "page_hooks": spent["page_hooks"],
        "assign": spent["assign"],
    }
    return {
        "devices": devices,
        "seconds": round(total, 3),
        "devices_per_second": round(devices / total),
        "note": "stages overlap (the next page is requested while one is written), so their "
        "seconds add up to more than the run's",
        "seconds_in_stage": {k: round(v, 3) for k, v in stages.items()},
        "microseconds_per_device": {k: round(v / devices * 1e6, 1) for k, v in stages.items()},
        "one_page_microseconds_per_device": {
            "json_decode_only": round(decode / 20 / len_page * 1e6, 2),
            "validate_json": round(whole / 20 / len_page * 1e6, 2),
        },
    }


# -- one backend -----------------------------------------------------------------------------


def bench_backend(
    base_url: str,
    backend: str,
    devices: int,
    changes: int,
    postgres_url: str,
    fetch_only: bool = False,
) -> dict[str, Any]:
    with installation(backend, postgres_url) as env:
        use(env)
        plain = f"{backend}-plain"
        names = {plain: devices}
        if not fetch_only:
            names[f"{backend}-timed"] = devices
            names[f"{backend}-bare"] = devices
            names[f"{backend}-assigned"] = devices
        asyncio.run(setup_tokens(base_url, names))

        result: dict[str, Any] = {}
        report, wall, cpu, rss, child_rss = cli_sync(plain, "--force")
        result["fetch"] = figures(report, asyncio.run(last_run(plain)), wall, cpu, rss, child_rss)
        # The same devices again: every one is stored, none changed.
        report, wall, cpu, rss, child_rss = cli_sync(plain, "--full", "--force")
        result["refetch"] = figures(report, asyncio.run(last_run(plain)), wall, cpu, rss, child_rss)
        if fetch_only:
            return result
        _, timed_name, bare, assigned = names

        result["breakdown"] = asyncio.run(breakdown(timed_name))
        result["breakdown_without_page_hooks"] = asyncio.run(breakdown(bare, page_hooks_on=False))

        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
            json.dump(PROFILE, file)
        define = subprocess.run(
            [sys.executable, "-m", "adesync.cli", "profiles", "define", "--token", assigned,
             "--file", file.name, "--default"],
            capture_output=True,
            text=True,
        )  # fmt: skip
        os.unlink(file.name)
        if define.returncode != 0:
            raise SystemExit(f"profiles define failed: {define.stderr}")
        report, wall, cpu, rss, child_rss = cli_sync(assigned, "--full", "--force")
        result["fetch_with_default_profile"] = figures(
            report, asyncio.run(last_run(assigned)), wall, cpu, rss, child_rss
        )

        for name, key in ((plain, "incremental"), (assigned, "incremental_with_default_profile")):
            change_devices(base_url, name, changes)
            report, wall, cpu, rss, child_rss = cli_sync(name, "--force")
            result[key] = figures(report, asyncio.run(last_run(name)), wall, cpu, rss, child_rss)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200_000)
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--postgres-url", default=PG_URL)
    parser.add_argument(
        "--fetch-only",
        action="store_true",
        help="only the full fetch and a second full fetch as `adesync sync` runs them",
    )
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgresql"]
    document: dict[str, Any] = {
        "benchmark": "sync_fetch",
        "devices": args.devices,
        "page_size": 1000,
        "changes": args.changes,
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with simulator(11) as base_url:
        for backend in backends:
            document[backend] = bench_backend(
                base_url, backend, args.devices, args.changes, args.postgres_url, args.fetch_only
            )
    document["targets"] = {
        "sqlite_devices_per_second": 20000,
        "postgresql_devices_per_second": 15000,
        "peak_rss_mb": 250,
        "incremental_seconds": 1.0,
    }
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
