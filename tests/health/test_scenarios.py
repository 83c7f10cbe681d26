"""Every finding produced for real and cleared again, checked through ``adesync diagnose --json``.

A token goes the admin's whole way: ``tokens keypair`` → the simulator's "create MDM server"
encrypts the token to that certificate → ``tokens add --dep-url`` → ``sync`` → a default
profile. Then the simulator (over loopback HTTP) misbehaves the way Apple does — terms pending,
a revoked token, a deleted server, outages, 429s, profile field errors, a clock offset,
throttled serials — the token is synced, ``diagnose`` must name the cause, the cause is fixed
the way an admin would fix it, and the finding must be gone. Time-based findings (stale syncs,
a dead scheduler, never synced, recovered cursors) move stored timestamps back instead of
waiting.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from sqlalchemy import delete, select, update

from adesync.notify.signing import verify
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_sync import assignments, sync_runs, worker_heartbeats
from adesync.store.types import utcnow
from tests.health.world import World
from tests.notify.receiver import Receiver


def test_a_healthy_token_has_no_finding_at_all(world: World) -> None:
    world.healthy_token()
    world.expect_healthy()
    status, report = world.diagnose()
    assert (status, report["findings"]) == (0, [])
    assert report["tokens"][0]["state"] == "healthy"


def test_terms_pending(world: World) -> None:
    server_uuid = world.healthy_token()
    org_id = world.sim.server(server_uuid).org.org_id
    world.sim.set_terms_pending(org_id)
    assert world.sync()["error_code"] == "terms_not_accepted"
    # The sync itself re-evaluated the token: the listing reads the stored state.
    (listed,) = json.loads(world.cli("tokens", "list", "--json").out)
    assert (listed["state"], listed["state_reason"]) == ("error", "terms_not_accepted")
    finding = world.expect("terms_not_accepted", "error", 2)
    assert "Administrator" in finding["actor"]
    world.sim.set_terms_pending(org_id, False)
    assert world.sync()["outcome"] == "ok"
    (listed,) = json.loads(world.cli("tokens", "list", "--json").out)
    assert (listed["state"], listed["state_reason"]) == ("healthy", None)
    world.expect_healthy()


def test_revoked_token_renewed(world: World) -> None:
    server_uuid = world.healthy_token()
    world.sim.revoke_token(server_uuid)
    world.sim.expire_sessions()
    assert world.sync()["error_code"] == "token_rejected"
    finding = world.expect("token_rejected", "error", 2)
    assert "adesync tokens renew lab --p7m FILE" in " ".join(finding["remediation"])
    world.renew("lab")
    assert world.sync()["outcome"] == "ok"
    world.expect_healthy()


def test_deleted_server_replaced(world: World) -> None:
    server_uuid = world.healthy_token()
    world.sim.delete_server(server_uuid)
    world.sim.expire_sessions()
    assert world.sync()["error_code"] == "access_denied"
    world.expect("access_denied", "error", 2)
    # A new MDM server with this token's certificate, the devices moved to it, its token.
    certificate = world.keypair("lab")
    download = world.sim.create_server("lab MDM 2", certificate_pem=certificate, devices=0)
    serials = [d["serial_number"] for d in world.sim.devices(server_uuid, 0, 100)]
    world.sim.move_devices(serials, download.server_uuid)
    renewed = world.cli("tokens", "renew", "lab", "--p7m", world.p7m(download.p7m), "--force")
    assert renewed.code == 0, renewed.err
    assert world.sync()["outcome"] == "ok"
    # The old server's cursor means nothing to the new one: adesync fetched everything again.
    world.expect_healthy(besides=("cursor_recovered",))


@pytest.mark.parametrize("mode", ["500", "503"])
def test_outage_of_server_errors(world: World, mode: str) -> None:
    world.healthy_token()
    world.sim.set_faults(outage={"mode": mode})
    assert world.sync()["error_code"] == "apple_unavailable"
    finding = world.expect("apple_unavailable", "warning", 1)
    assert f"HTTP {mode}" in finding["detail"]
    world.sim.clear_faults()
    assert world.sync()["outcome"] == "ok"
    world.expect_healthy()


def test_too_many_requests(world: World) -> None:
    world.healthy_token()
    world.sim.set_faults(throttle={"status": 429, "retry_after": 3600})
    assert world.sync()["error_code"] == "apple_throttled"
    finding = world.expect("apple_throttled", "info", 0)  # waiting is not an error
    assert "resumes at" in finding["detail"]
    world.sim.clear_faults()
    assert world.sync()["outcome"] == "ok"
    world.expect_healthy()


def test_profile_field_error_from_apple(world: World) -> None:
    world.healthy_token()
    world.sim.set_faults(
        scripts={"define_profile": [{"response": "bad_request_config_url_invalid"}]}
    )
    refused = world.define_default(url="https://mdm.example.org/other")
    # A change Apple refuses changes nothing: one sentence naming Apple's code, no finding.
    assert refused.code == 1 and "CONFIG_URL_INVALID" in refused.err
    world.expect_healthy()
    assert world.define_default(url="https://mdm.example.org/other").code == 0
    world.expect_healthy()


def test_profile_not_found_for_new_devices(world: World) -> None:
    server_uuid = world.healthy_token()
    world.sim.add_devices(server_uuid, 2)
    world.sim.set_faults(scripts={"assign_profile": [{"response": "not_found"}]})
    assert world.sync()["outcome"] == "ok"  # the devices sync; the profile is the problem
    world.expect("profile_not_found", "error", 2)
    assert world.define_default().code == 0
    world.expect_healthy()


def test_a_profile_problem_outlives_a_later_outage(world: World) -> None:
    """A later error of another kind (here an outage) does not hide the profile problem: both
    are reported while both last, and the profile one until a profile is defined."""
    server_uuid = world.healthy_token()
    world.sim.add_devices(server_uuid, 2)
    world.sim.set_faults(scripts={"assign_profile": [{"response": "not_found"}]})
    assert world.sync()["outcome"] == "ok"
    world.sim.set_faults(outage={"mode": "503"})
    assert world.sync()["error_code"] == "apple_unavailable"
    assert {"profile_not_found", "apple_unavailable"} <= set(world.findings())
    world.sim.clear_faults()
    assert world.sync()["outcome"] == "ok"
    world.expect("profile_not_found", "error", 2)
    assert world.define_default().code == 0
    world.expect_healthy()


def test_clock_offset(world: World) -> None:
    world.healthy_token()
    world.sim.configure(clock_offset_seconds=900)
    world.sim.expire_sessions()
    assert world.sync()["error_code"] == "clock_skew"
    finding = world.expect("clock_skew", "error", 2)
    assert "token_rejected" not in world.findings()
    assert "NTP" in " ".join(finding["remediation"])
    world.sim.configure(clock_offset_seconds=0)
    assert world.sync()["outcome"] == "ok"
    world.expect_healthy()


def test_throttled_serials(world: World) -> None:
    server_uuid = world.healthy_token()
    serials = world.sim.add_devices(server_uuid, 3)
    world.sim.throttle_serials(server_uuid, serials, retry_after=60)
    assert world.sync()["outcome"] == "ok"
    finding = world.expect("apple_throttled", "info", 0)
    assert finding["count"] == 3
    # A minute passes at Apple; our retry comes due.
    world.tick(61)

    async def due(db: Database) -> None:
        async with db.write() as session:
            await session.execute(
                update(assignments)
                .where(assignments.c.status == "THROTTLED")
                .values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )

    world.db(due)
    assert world.sync()["outcome"] == "ok"
    world.expect_healthy()


def test_serials_not_accessible_or_failed(world: World) -> None:
    server_uuid = world.healthy_token()
    failing = world.sim.add_devices(server_uuid, 2)
    world.sim.fail_serials(server_uuid, failing, times=1)
    assert world.sync()["outcome"] == "ok"
    finding = world.expect("assignment_failed", "warning", 1)
    assert sorted(finding["samples"]) == sorted(failing)
    # adesync retries FAILED serials on its own once their wait is over.

    async def due(db: Database) -> None:
        async with db.write() as session:
            await session.execute(
                update(assignments).values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )

    world.db(due)
    assert world.sync()["outcome"] == "ok"
    world.expect_healthy()


def test_user_agent_rejected(world: World) -> None:
    world.healthy_token()
    world.sim.configure(rejected_user_agents=["adesync/"])
    assert world.sync()["error_code"] == "user_agent_rejected"
    world.expect("user_agent_rejected", "error", 2)
    world.sim.configure(rejected_user_agents=[])
    assert world.sync()["outcome"] == "ok"
    world.expect_healthy()


def test_cursor_recovered_is_info_for_a_day(world: World) -> None:
    server_uuid = world.healthy_token()
    world.sim.expire_cursors(server_uuid)
    assert world.sync()["outcome"] == "ok"
    world.expect("cursor_recovered", "info", 0)

    async def a_day_ago(db: Database) -> None:
        async with db.write() as session:
            await session.execute(
                update(sync_runs).values(started_at=utcnow() - timedelta(hours=25))
            )

    world.db(a_day_ago)
    world.expect_healthy()


def test_token_expiring_soon_then_renewed(world: World) -> None:
    soon = (datetime.now(UTC) + timedelta(days=6, hours=1)).isoformat()
    world.healthy_token(token_expiry=soon)
    finding = world.expect("token_expiring", "warning", 1)
    assert finding["title"] == "Token expires in 6 days"
    world.renew("lab")  # the simulator's new token lasts a year
    world.expect_healthy()


def test_token_expired(world: World) -> None:
    world.healthy_token()

    async def expire(db: Database) -> None:
        async with db.write() as session:
            await session.execute(
                update(tokens).values(access_token_expiry=utcnow() - timedelta(hours=1))
            )

    world.db(expire)
    world.expect("token_expired", "error", 2)
    world.renew("lab")
    world.expect_healthy()


def _short_certificate(world: World) -> None:
    """Store a certificate for the token's own key that ends in 20 days (one issued years
    ago, say), as the one ABM holds."""

    async def shorten(db: Database) -> None:
        async with db.write() as session:
            sealed = (await session.execute(select(tokens.c.active_private_key))).scalar_one()
            key = serialization.load_pem_private_key(world.home.box.open(sealed), password=None)
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab")])
            now = datetime.now(UTC)
            certificate = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())  # type: ignore[arg-type]
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1800))
                .not_valid_after(now + timedelta(days=20))
                .sign(key, hashes.SHA256())  # type: ignore[arg-type]
            )
            pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
            await session.execute(update(tokens).values(active_certificates=pem))

    world.db(shorten)


def test_certificate_near_its_end(world: World) -> None:
    world.healthy_token()
    _short_certificate(world)
    finding = world.expect("certificate_expiring", "warning", 1)
    assert finding["title"] == "The token's certificate expires in 19 days"
    # The admin's fix: a new key pair, uploaded to the MDM server, and the token it brings.
    certificate = world.keypair("lab", "--new")
    world.renew("lab", certificate=certificate)
    world.expect_healthy()


def test_stale_sync_escalates_and_clears(world: World) -> None:
    world.healthy_token()

    world.db(_moved_success(30))
    world.expect("sync_stale", "warning", 1)
    world.db(_moved_success(80))
    world.expect("sync_stale", "error", 2)
    assert world.sync()["outcome"] == "ok"
    world.expect_healthy()


def _moved_success(hours: int) -> Callable[[Database], Coroutine[Any, Any, None]]:
    async def move(db: Database) -> None:
        async with db.write() as session:
            await session.execute(
                update(tokens).values(last_successful_sync_at=utcnow() - timedelta(hours=hours))
            )

    return move


def test_never_synced(world: World) -> None:
    world.add()
    world.heartbeat()

    async def added_long_ago(db: Database) -> None:
        async with db.write() as session:
            await session.execute(
                update(tokens).values(token_added_at=utcnow() - timedelta(hours=2))
            )

    world.db(added_long_ago)
    finding = world.expect("never_synced", "warning", 1)
    assert "no sync was attempted" in finding["detail"]
    assert world.sync()["outcome"] == "ok"
    assert "never_synced" not in world.findings()


def test_no_default_profile_and_devices_without_one(world: World) -> None:
    world.add()
    world.heartbeat()
    assert world.sync()["outcome"] == "ok"
    found = world.findings()
    assert found["no_default_profile"]["severity"] == "warning"
    assert found["devices_without_profile"]["count"] == 12
    assert len(found["devices_without_profile"]["samples"]) == 5
    assert world.define_default().code == 0
    world.expect_healthy()


def test_dead_scheduler(world: World) -> None:
    world.healthy_token()

    async def stopped_long_ago(db: Database) -> None:
        async with db.write() as session:
            await session.execute(
                update(worker_heartbeats).values(last_seen_at=utcnow() - timedelta(minutes=9))
            )

    world.db(stopped_long_ago)
    status, report = world.diagnose()
    assert status == 1
    (finding,) = report["findings"]
    assert (finding["code"], finding["token"]) == ("scheduler_down", None)
    world.expect_healthy()  # a token's own check leaves the installation out
    world.heartbeat()  # a worker started again
    status, report = world.diagnose()
    assert (status, report["findings"]) == (0, [])


def test_duplicate_server(world: World) -> None:
    server_uuid = world.healthy_token()
    certificate = world.keypair("copy")
    download = world.sim.download_token(server_uuid, certificate_pem=certificate)
    forced = world.cli(
        "tokens", "add", "copy", "--p7m", world.p7m(download.p7m), "--dep-url", world.base_url,
        "--force",
    )  # fmt: skip
    assert forced.code == 0, forced.err
    finding = world.expect("duplicate_server", "error", 2)
    assert "copy" in finding["detail"]
    deleted = world.cli("tokens", "delete", "copy", "--yes")
    assert deleted.code == 0, deleted.err
    # The copy's download superseded lab's token: renew lab with the newest download.
    world.renew("lab")
    assert world.sync()["outcome"] == "ok"
    world.expect_healthy()


def test_personal_apple_account(world: World) -> None:
    server_uuid = world.healthy_token(admin_id="someone@icloud.com")
    finding = world.expect("personal_apple_id", "info", 0)
    assert "icloud.com" in finding["detail"]
    # The next renewal is downloaded by an organisational Managed Apple Account.
    world.sim.server(server_uuid).admin_id = "ade-admin@school.example"
    world.renew("lab")
    world.expect_healthy()


def test_over_capacity(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADESYNC_TOKEN_CAPACITY", "10")
    server_uuid = world.healthy_token()
    finding = world.expect("token_over_capacity", "warning", 1)
    assert finding["count"] == 12
    other = world.sim.create_server("elsewhere", devices=0)
    serials = [d["serial_number"] for d in world.sim.devices(server_uuid, 0, 3)]
    world.sim.move_devices(serials, other.server_uuid)
    assert world.sync()["outcome"] == "ok"
    world.expect_healthy()


def test_chinese_report_of_a_real_error(world: World) -> None:
    server_uuid = world.healthy_token()
    world.sim.set_terms_pending(world.sim.server(server_uuid).org.org_id)
    world.sync()
    result = world.cli("diagnose", "--json", "--lang", "zh-CN")
    report = json.loads(result.out)
    assert report["alert"]["title"] == "一个或多个 ADE 令牌处于错误状态"
    assert report["findings"][0]["title"] == "尚未接受 Apple 的新条款与条件"


def test_stale_findings_of_a_deleted_token_go_with_it(world: World) -> None:
    server_uuid = world.healthy_token()
    world.sim.revoke_token(server_uuid)
    world.sim.expire_sessions()
    world.sync()
    world.expect("token_rejected", "error", 2)
    assert world.cli("tokens", "delete", "lab", "--yes").code == 0

    async def nothing_left(db: Database) -> int:
        from adesync.store.tables_health import findings

        async with db.write() as session:
            await session.execute(delete(worker_heartbeats))
            return len((await session.execute(select(findings))).all())

    assert world.db(nothing_left) == 0
    status, report = world.diagnose()
    assert (status, report["findings"], report["alert"]) == (0, [], None)


def test_device_events_from_a_real_sync(
    world: World, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADESYNC_DEVICE_EVENTS_URL", receiver.url)
    monkeypatch.setenv("ADESYNC_DEVICE_EVENTS_SECRET", "mdm")
    world.add(devices=12)
    assert world.sync()["outcome"] == "ok"
    delivered = world.cli("notify", "deliver")
    assert delivered.code == 0, delivered.err
    documents = [json.loads(r.body) for r in receiver.requests]
    assert {d["event"] for d in documents} == {"devices.synced"}
    assert sum(len(d["devices"]) for d in documents) == 12
    assert documents[0]["kind"] == "fetch"
    assert all(verify(b"mdm", r.headers["x-adesync-signature"], r.body) for r in receiver.requests)
