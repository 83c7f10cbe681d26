"""How fast adesync.apple turns Apple's device pages into typed records.

Serves pages of 1000 real-shaped devices through ``httpx.MockTransport`` (no network, so this
measures the client: request building, session header, JSON validation), and fetches as many
from the simulator over loopback HTTP (client plus simulator), and prints one JSON document:
devices per second for each, and for bare page validation. The sync engine needs
about 20,000 devices/s end to end, so the client must be well above that.

    /work/venv/bin/python bench/apple_client.py [--pages 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx

from adesync.apple import AppleClient, DevicePage, OAuthCredentials

PAGE_SIZE = 1000


def _page(index: int, pages: int) -> bytes:
    devices = [
        {
            "serial_number": f"C02{index:04d}{n:05d}",
            "model": "MacBook Pro",
            "description": "MBP 13.3 SPACE GRAY/2.0GHZ/8GB/256GB-USA",
            "color": "SPACE GRAY",
            "os": "OSX",
            "device_family": "Mac",
            "profile_status": "assigned",
            "profile_uuid": "C1F123098EB5074580041E69883004C3",
            "profile_assign_time": "2018-09-08T16:49:09Z",
            "device_assigned_date": "2017-10-16T01:55:30Z",
            "device_assigned_by": "apple-dep@acme.co",
            "op_type": "modified",
            "op_date": "2018-09-08T16:49:09Z",
        }
        for n in range(PAGE_SIZE)
    ]
    return json.dumps(
        {
            "devices": devices,
            "cursor": f"cursor-{index + 1}",
            "more_to_follow": index + 1 < pages,
            "fetched_until": "2018-09-08T17:28:18Z",
        }
    ).encode()


async def _paging(pages: int) -> float:
    bodies = [_page(i, pages) for i in range(pages)]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/session":
            return httpx.Response(200, json={"auth_session_token": "bench"})
        cursor = json.loads(request.content).get("cursor")
        index = 0 if cursor is None else int(cursor.split("-")[1])
        return httpx.Response(200, content=bodies[index])

    creds = OAuthCredentials("CK_bench", "CS_bench", "AT_bench", "AS_bench")
    async with AppleClient(
        creds, base_url="http://127.0.0.1:9", transport=httpx.MockTransport(handler)
    ) as client:
        start = time.perf_counter()
        count = 0
        async for page in client.iter_sync_devices("cursor-0", limit=PAGE_SIZE):
            count += len(page.devices)
        elapsed = time.perf_counter() - start
    assert count == pages * PAGE_SIZE
    return count / elapsed


async def _loopback(devices: int) -> float:
    """A full fetch from the simulator over real HTTP on 127.0.0.1 (simulator cost included)."""
    from adesync.simulator import Simulator, run_in_thread

    sim = Simulator(devices=devices, seed=1)
    server = sim.create_server("bench").server_uuid
    values = sim.credentials(server)
    base_url, stop = run_in_thread(sim)
    try:
        creds = OAuthCredentials(
            values["consumer_key"],
            values["consumer_secret"],
            values["access_token"],
            values["access_secret"],
        )
        async with AppleClient(creds, base_url=base_url) as client:
            await client.account()
            start = time.perf_counter()
            count = 0
            async for page in client.iter_fetch_devices():
                count += len(page.devices)
            elapsed = time.perf_counter() - start
    finally:
        stop()
    assert count == devices
    return count / elapsed


def _validation(pages: int) -> float:
    body = _page(0, 1)
    start = time.perf_counter()
    for _ in range(pages):
        DevicePage.model_validate_json(body)
    return pages * PAGE_SIZE / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40)
    args = parser.parse_args()
    paging = asyncio.run(_paging(args.pages))
    validation = _validation(args.pages)
    loopback = asyncio.run(_loopback(args.pages * PAGE_SIZE))
    print(
        json.dumps(
            {
                "benchmark": "apple_client",
                "pages": args.pages,
                "page_size": PAGE_SIZE,
                "paging_devices_per_second": round(paging),
                "validation_devices_per_second": round(validation),
                "simulator_loopback_devices_per_second": round(loopback),
                "target_devices_per_second": 20000,
            }
        )
    )


if __name__ == "__main__":
    main()
