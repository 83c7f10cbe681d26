"""The demo's enrollment story: devices of the two Acme tokens download their ADE profile,
and a (pretend) NanoMDM reports their check-ins through the real webhook path. On
``acme-hq`` every device enrolls; on ``acme-branch`` a few never do (two authenticate and
stop), so ``pushed_not_enrolled`` shows with the funnel on its page."""

from __future__ import annotations

import base64
import json
import plistlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from adesync.enrollment.model import EventSource
from adesync.enrollment.recorder import record_webhook
from adesync.enrollment.webhooks import parse_webhook
from adesync.health.evaluate import evaluate
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_sync import devices

__all__ = ["DEMO_ENROLLMENT", "seed_enrollment"]

# token name -> (devices that download their profile, enroll, authenticate and stop)
DEMO_ENROLLMENT: dict[str, tuple[int, int, int]] = {
    "acme-hq": (40, 40, 0),
    "acme-branch": (30, 24, 2),
}
PUSHED_AGO = timedelta(days=2)


def _webhook(message: dict[str, Any], topic: str, at: datetime, tally: int | None) -> bytes:
    checkin: dict[str, Any] = {
        "udid": message["UDID"],
        "raw_payload": base64.b64encode(plistlib.dumps(message)).decode(),
    }
    if tally is not None:
        checkin["token_update_tally"] = tally
    body = {"topic": topic, "created_at": at.isoformat(), "checkin_event": checkin}
    return json.dumps(body).encode()


async def _report_check_ins(
    db: Database, serial: str, authenticated_at: datetime, enrolls: bool, now: datetime
) -> None:
    udid = f"DEMO-{serial}"
    topic = "com.apple.mgmt.External.demo"
    authenticate = {
        "MessageType": "Authenticate",
        "SerialNumber": serial,
        "UDID": udid,
        "Topic": topic,
        "Model": "iPad13,1",
    }
    bodies = [_webhook(authenticate, "mdm.Authenticate", authenticated_at, None)]
    if enrolls:
        update_message = {
            "MessageType": "TokenUpdate",
            "UDID": udid,
            "Topic": topic,
            "PushMagic": f"magic-{serial}",
            "Token": b"demo-push-token",
            "AwaitingConfiguration": False,
        }
        at = authenticated_at + timedelta(seconds=40)
        bodies.append(_webhook(update_message, "mdm.TokenUpdate", at, 1))
    for body in bodies:
        await record_webhook(db, parse_webhook(body, EventSource.NANOMDM), now)


async def seed_enrollment(
    db: Database,
    sim: Any,
    sync: Any,
    servers: dict[str, str],
    now: datetime,
    progress: Callable[[str], None],
) -> None:
    """Mark devices pushed in the simulator, sync, date the downloads two days back, and
    report the check-ins of those that enroll (see the module doc)."""
    chosen: dict[str, list[str]] = {}
    for name, (count, _, _) in DEMO_ENROLLMENT.items():
        records = sim.devices(servers[name], 0, count)
        chosen[name] = [r["serial_number"] for r in records]
        sim.mark_pushed(servers[name], chosen[name])
    progress("devices download their ADE profiles; syncing again")
    await sync.sync_named(list(DEMO_ENROLLMENT), trigger="add", force=True)
    async with db.write() as session:
        rows = await session.execute(
            select(tokens.c.name, tokens.c.id).where(tokens.c.name.in_(list(chosen)))
        )
        ids = {name: token_id for name, token_id in rows}
        # The simulator's clock is today; the story needs downloads old enough to be stuck.
        for name, serials in chosen.items():
            await session.execute(
                update(devices)
                .where(devices.c.token_id == ids[name], devices.c.serial_number.in_(serials))
                .values(profile_push_time=now - PUSHED_AGO)
            )
    progress("the MDM reports check-ins through the NanoMDM webhook path")
    for name, (_, enrolled, stopped) in DEMO_ENROLLMENT.items():
        for position, serial in enumerate(chosen[name]):
            if position >= enrolled + stopped:
                break
            started = now - PUSHED_AGO + timedelta(minutes=5 + position)
            await _report_check_ins(db, serial, started, position < enrolled, now)
    await evaluate(db)
