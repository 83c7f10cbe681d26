"""Prometheus metrics (text renderer, ASGI app, own port) and JSON log lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from adesync.health import evaluate
from adesync.health.transitions import log
from adesync.notify import metrics
from adesync.notify.jobs import count_apple_answer
from adesync.notify.logs import JsonLineFormatter
from adesync.notify.metrics import (
    REGISTRY,
    count_sync_run,
    metrics_app,
    render_metrics,
    start_metrics_server,
)
from adesync.store.database import Database
from adesync.store.types import utcnow
from tests.health.factory import add_devices, add_run, add_token, beat


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def seed(db: Database) -> None:
    now = utcnow()
    bad = await add_token(
        db,
        "lab",
        org_name="Lab School",
        access_token_expiry=now - timedelta(days=1),
        last_successful_sync_at=now - timedelta(hours=1),
    )
    await add_devices(db, bad, 3)
    await add_devices(db, bad, 2, prefix="GONE", deleted=True)
    await add_token(db, "ok", org_name="Ok", access_token_expiry=now + timedelta(days=100))
    await beat(db, now)
    await evaluate(db, now=now)


async def test_per_token_gauges_come_from_the_database(db: Database) -> None:
    await seed(db)
    values = samples((await render_metrics(db, max_age=0)).decode())
    lab = (("org", "Lab School"), ("token", "lab"))
    assert values[("adesync_token_state", lab)] == 2
    assert values[("adesync_token_devices", lab)] == 3
    assert -1.1 < values[("adesync_token_days_left", lab)] < -0.9
    assert values[("adesync_token_state", (("org", "Ok"), ("token", "ok")))] == 0
    assert ("adesync_token_expiry_timestamp_seconds", lab) in values
    assert ("adesync_token_last_successful_sync_timestamp_seconds", lab) in values
    assert values[("adesync_findings", (("code", "token_expired"), ("severity", "error")))] == 1


async def test_the_asgi_app_answers_get_only(db: Database) -> None:
    await seed(db)
    transport = httpx.ASGITransport(app=metrics_app(lambda: db))
    async with httpx.AsyncClient(transport=transport, base_url="http://adesync") as client:
        answer = await client.get("/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        assert "adesync_token_state" in answer.text
        assert (await client.post("/metrics")).status_code == 405


async def test_metrics_on_their_own_port(db: Database) -> None:
    await seed(db)
    server = start_metrics_server(db, 0, host="127.0.0.1")
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):  # the first refresh runs as soon as the loop is free
                text = (await client.get(f"http://127.0.0.1:{server.port}/metrics")).text
                if 'token="lab"' in text:
                    break
                await asyncio.sleep(0.05)
        assert samples(text)[("adesync_token_devices", (("org", "Lab School"), ("token", "lab")))]
    finally:
        await server.aclose()


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_sync_runs_are_counted_once(db: Database) -> None:
    # Test databases restart their ids; forget runs counted by earlier tests in this process.
    metrics._counted_runs.clear()
    token_id = await add_token(db)
    await add_run(db, token_id, outcome="error", error_code="terms_not_accepted")
    runs = value("adesync_sync_runs_total", outcome="error")
    answers = value("adesync_apple_calls_total", endpoint="/account", code="terms_not_accepted")
    await count_sync_run(db, token_id)
    await count_sync_run(db, token_id)  # a check after the same run counts nothing new
    assert value("adesync_sync_runs_total", outcome="error") == runs + 1
    # The calls are counted as they are made (below), not again from the run.
    assert (
        value("adesync_apple_calls_total", endpoint="/account", code="terms_not_accepted")
        == answers
    )


def test_wired_processes_count_every_call_to_apple_by_path_and_outcome() -> None:
    from adesync.sync import hooks
    from adesync.wiring import install

    install()
    assert any(o is count_apple_answer for o in hooks.ON_APPLE_ANSWER)
    before = value("adesync_apple_calls_total", endpoint="/devices/sync", code="apple_throttled")
    hooks.apple_answered("/devices/sync", "apple_throttled")
    after = value("adesync_apple_calls_total", endpoint="/devices/sync", code="apple_throttled")
    assert after == before + 1


async def test_transitions_are_logged_as_json_lines(db: Database) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        await seed(db)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    lab = next(line for line in lines if line.get("token") == "lab")
    assert lab["event"] == "health.transition"
    assert (lab["old_state"], lab["new_state"], lab["state_reason"]) == (
        None,
        "error",
        "token_expired",
    )
    assert lab["codes"] == ["token_expired"]
    assert lab["level"] == "info"
    assert lab["time"].endswith("Z")
