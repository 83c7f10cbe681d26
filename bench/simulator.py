"""How fast the simulator serves 1000-device fetch pages at N = 1,000,000, and its memory.

Starts ``adesync simulate --devices N --port <free>`` in a subprocess, creates an MDM server
through the admin API, signs ``GET /session`` with oauthlib (not adesync.apple), then fetches
pages of 1000 devices for ``--seconds`` with a few concurrent cursor chains. Prints one JSON
document: pages_per_s, devices_per_s, startup_s, peak_rss_mb (VmHWM of the simulator process),
plus the RSS before and after the run to show memory does not grow per request.

    /work/venv/bin/python bench/simulator.py [--devices 1000000] [--seconds 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from oauthlib.oauth1 import Client as OAuthClient

PAGE = 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(pid: int, field: str) -> float:
    """A memory figure of /proc/<pid>/status in MB (VmHWM = peak RSS, VmRSS = now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], limit: float = 60) -> float:
    started = time.perf_counter()
    with httpx.Client(timeout=1) as client:
        while time.perf_counter() - started < limit:
            if process.poll() is not None:
                raise RuntimeError("the simulator exited during start-up")
            try:
                if client.get(f"{base_url}/_sim/health").status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.02)
    raise RuntimeError("the simulator did not answer within a minute")


def _session(base_url: str, credentials: dict[str, str]) -> str:
    signer = OAuthClient(
        credentials["consumer_key"],
        client_secret=credentials["consumer_secret"],
        resource_owner_key=credentials["access_token"],
        resource_owner_secret=credentials["access_secret"],
        nonce=uuid.uuid4().hex,
    )
    _, headers, _ = signer.sign(f"{base_url}/session", "GET")
    response = httpx.get(
        f"{base_url}/session", headers={**headers, "User-Agent": "adesync-bench/1"}
    )
    response.raise_for_status()
    return str(response.json()["auth_session_token"])


def _tail(body: str) -> tuple[str, bool]:
    """The cursor and more_to_follow of a page, read from its end (cheap for the client)."""
    tail = body[body.rindex('"cursor":') :]
    cursor = tail.split('"', 4)[3]
    return cursor, '"more_to_follow":true' in tail


async def _worker(
    client: httpx.AsyncClient, deadline: float, totals: dict[str, int], check_every: int
) -> None:
    cursor: str | None = None
    while time.perf_counter() < deadline:
        body: dict[str, Any] = {"limit": PAGE}
        if cursor is not None:
            body["cursor"] = cursor
        response = await client.post("/server/devices", json=body)
        if response.status_code != 200:
            raise RuntimeError(f"fetch answered {response.status_code}: {response.text[:200]}")
        text = response.text
        cursor, more = _tail(text)
        count = text.count('"serial_number"')
        if totals["pages"] % check_every == 0:  # now and then, check the page properly
            page = json.loads(text)
            assert len(page["devices"]) == count and page["cursor"] == cursor
            assert len({d["serial_number"] for d in page["devices"]}) == count
        if more and count != PAGE:
            raise RuntimeError(f"a page held {count} devices, not {PAGE}")
        totals["pages"] += 1
        totals["devices"] += count
        if not more:
            cursor = None  # start a new full fetch


async def _run(base_url: str, session: str, seconds: float, workers: int) -> dict[str, float]:
    headers = {
        "User-Agent": "adesync-bench/1",
        "X-Server-Protocol-Version": "10",
        "X-ADM-Auth-Session": session,
        "Content-Type": "application/json;charset=UTF8",
    }
    totals = {"pages": 0, "devices": 0}
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    # Without TCP_NODELAY, h11 sends a POST's headers and body as two segments and Nagle holds
    # the body until the server's delayed ACK (~40 ms): the bench would measure TCP, not us.
    transport = httpx.AsyncHTTPTransport(
        limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=30, transport=transport
    ) as client:
        warmup = {"pages": 0, "devices": 0}
        await _worker(client, time.perf_counter() + 1.0, warmup, 10**9)
        started = time.perf_counter()
        cpu_started = time.process_time()
        deadline = started + seconds
        await asyncio.gather(*(_worker(client, deadline, totals, 50) for _ in range(workers)))
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() - cpu_started
    return {
        "client_cpu_ms_per_page": round(1000 * client_cpu / max(totals["pages"], 1), 2),
        "pages_per_s": round(totals["pages"] / elapsed, 1),
        "devices_per_s": round(totals["devices"] / elapsed),
        "pages": totals["pages"],
        "warmup_pages": warmup["pages"],
        "seconds": round(elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="concurrent cursor chains")
    args = parser.parse_args()

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "adesync.cli", "simulate",
        "--devices", str(args.devices), "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        startup = _wait_ready(base_url, process)
        created = httpx.post(f"{base_url}/_sim/servers", json={"name": "bench"}, timeout=30)
        created.raise_for_status()
        server_uuid = created.json()["server_uuid"]
        credentials = httpx.get(f"{base_url}/_sim/servers/{server_uuid}/credentials").json()
        session = _session(base_url, credentials)
        rss_before = _status(process.pid, "VmRSS")
        cpu_before = _cpu_seconds(process.pid)
        result = asyncio.run(_run(base_url, session, args.seconds, args.workers))
        cpu = _cpu_seconds(process.pid) - cpu_before
        cpu_per_page = cpu / max(result["pages"] + result.pop("warmup_pages"), 1)
        rss_after = _status(process.pid, "VmRSS")
        peak = _status(process.pid, "VmHWM")
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(
        json.dumps(
            {
                **result,
                "startup_s": round(startup, 2),
                # CPU the simulator process spent per page, and the page rate that makes on one
                # core: the figure to read when other processes share the machine.
                "server_cpu_ms_per_page": round(cpu_per_page * 1000, 2),
                "server_capacity_pages_per_s": round(1 / cpu_per_page, 1) if cpu_per_page else None,
                "peak_rss_mb": round(peak, 1),
                "rss_before_mb": round(rss_before, 1),
                "rss_after_mb": round(rss_after, 1),
                "devices": args.devices,
                "page_size": PAGE,
                "workers": args.workers,
            }
        )
    )


if __name__ == "__main__":
    main()
