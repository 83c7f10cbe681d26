"""The two enrollment findings, through health's evaluation, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import insert, update

from adesync.enrollment import probe_profiles
from adesync.health import Finding, Severity, evaluate, render_finding
from adesync.health.messages import TokenLabel
from adesync.store.database import Database
from adesync.store.tables_enrollment import enrollment_events
from adesync.store.tables_sync import devices
from tests.enrollment.servers import closed_port_url, https_server, make_certificates, status
from tests.enrollment.test_probe import anywhere
from tests.health.factory import NOW, add_devices, add_profile, add_token, beat


async def findings(db: Database, name: str = "school") -> dict[str, Finding]:
    health = await evaluate(db, now=NOW)
    for token in health.tokens:
        if token.label.name == name:
            return {seen.finding.code: seen.finding for seen in token.findings}
    raise AssertionError(f"token {name} was not evaluated")


async def add_events(db: Database, serial: str, *kinds: str) -> None:
    """Events as the recorder stores them (the rules read them as they are)."""
    async with db.write() as session:
        await session.execute(
            insert(enrollment_events),
            [
                {
                    "serial_number": serial,
                    "event": kind,
                    "at": NOW - timedelta(days=1),
                    "source": "api",
                    "event_key": f"{serial}-{kind}",
                    "received_at": NOW,
                }
                for kind in kinds
            ],
        )


STUCK = {
    "profile_status": "pushed",
    "profile_push_time": NOW - timedelta(days=2),
    "enrollment_state": "pushed",
}


async def test_pushed_not_enrolled_counts_stuck_devices_once_events_flow(db: Database) -> None:
    token_id = await add_token(db)
    await beat(db)
    await add_devices(db, token_id, 3, prefix="STUCK", **STUCK)
    await add_devices(db, token_id, 1, prefix="FAIL", **{**STUCK, "enrollment_state": "failed"})
    # Pushed only an hour ago: not stuck yet.
    await add_devices(
        db, token_id, 1, prefix="FRESH", **{**STUCK, "profile_push_time": NOW - timedelta(hours=1)}
    )
    # Without any MDM event on this token's devices, adesync cannot tell: no finding.
    assert "pushed_not_enrolled" not in await findings(db)

    done = await add_devices(
        db,
        token_id,
        2,
        prefix="DONE",
        **{**STUCK, "enrollment_state": "enrolled", "mdm_enrolled_at": NOW - timedelta(days=1)},
    )
    for serial in done:
        await add_events(db, serial, "authenticated", "enrolled")
    finding = (await findings(db))["pushed_not_enrolled"]
    assert finding.severity is Severity.WARNING
    assert (finding.count, finding.variant) == (4, "failed")
    assert finding.data == {
        "devices": 4,
        "failed": 1,
        "oldest_push_at": "2030-05-30T12:00:00Z",
    }
    # Samples are the first stored devices (the stuck ones were added first).
    assert finding.samples == ("STUCK000000", "STUCK000001", "STUCK000002", "FAIL000000")
    text = render_finding(finding, TokenLabel(token_id, "school", "Org", "MDM", "asm"), "en")
    assert text["title"] == "4 devices downloaded their profile but never enrolled"
    assert "1 of them authenticated" in text["detail"]


async def test_pushed_not_enrolled_leaves_other_tokens_alone(db: Database) -> None:
    fed = await add_token(db, "fed")
    quiet = await add_token(db, "quiet")
    await beat(db)
    await add_devices(db, fed, 1, prefix="F", **STUCK)
    [seen] = await add_devices(
        db, fed, 1, prefix="E", **{**STUCK, "mdm_authenticated_at": NOW - timedelta(days=1)}
    )
    await add_events(db, seen, "authenticated")
    await add_devices(db, quiet, 5, prefix="Q", **STUCK)
    assert "pushed_not_enrolled" in await findings(db, "fed")
    assert "pushed_not_enrolled" not in await findings(db, "quiet")


async def test_enrollment_url_unreachable_names_the_url_and_the_waiting_devices(
    db: Database,
) -> None:
    certs = make_certificates()
    token_id = await add_token(db)
    await beat(db)
    down = closed_port_url()
    await add_profile(db, token_id, "{}", url=down)
    await add_devices(db, token_id, 3, profile_uuid="PROFILE1")
    await add_devices(
        db, token_id, 2, prefix="IN", profile_uuid="PROFILE1", enrollment_state="enrolled"
    )
    assert "enrollment_url_unreachable" not in await findings(db)  # never probed yet

    await probe_profiles(db, now=NOW, refusal=anywhere)
    finding = (await findings(db))["enrollment_url_unreachable"]
    assert finding.severity is Severity.WARNING
    assert finding.count == 3
    assert finding.data == {
        "url": down,
        "error": "The enrollment server is not reachable.",
        "devices": 3,
        "profile_name": "Staff",
        "profiles": 1,
        "probed_at": "2030-06-01T12:00:00Z",
    }
    label = TokenLabel(token_id, "school", "Org", "MDM", "asm")
    text = render_finding(finding, label, "zh-CN")
    assert down in text["title"] and "3 台设备" in text["detail"]

    # The URL is fixed (a server with a certificate the profile anchors now answers): it clears.
    async with https_server(certs.leaf, status(200)) as server:
        anchors = json.dumps({"anchor_certs": [certs.ca.der_base64]})
        await add_profile(db, token_id, anchors, url=server.url, profile_uuid="PROFILE2")
        async with db.write() as session:
            await session.execute(update(devices).values(profile_uuid="PROFILE2"))
        from adesync.store.tables import tokens

        async with db.write() as session:
            await session.execute(update(tokens).values(default_profile_uuid="PROFILE2"))
        await probe_profiles(db, now=NOW, refusal=anywhere)
    assert "enrollment_url_unreachable" not in await findings(db)


async def test_several_failing_profiles_are_one_finding(db: Database) -> None:
    token_id = await add_token(db)
    await beat(db)
    await add_profile(db, token_id, "{}", url=closed_port_url())
    other = closed_port_url().replace("/mdm/enroll", "/other")
    await add_profile(db, token_id, "{}", url=other, profile_uuid="P2", profile_name="Lab")
    await add_devices(db, token_id, 1, profile_uuid="PROFILE1")
    await add_devices(db, token_id, 4, prefix="LAB", profile_uuid="P2")
    await probe_profiles(db, now=NOW, refusal=anywhere)
    finding = (await findings(db))["enrollment_url_unreachable"]
    assert (finding.variant, finding.count) == ("several", 5)
    assert (finding.data["url"], finding.data["profile_name"], finding.data["profiles"]) == (
        other,
        "Lab",
        2,
    )
