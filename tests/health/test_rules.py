"""Each rule against rows inserted directly, on SQLite and PostgreSQL, with an injected clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import insert, update

from adesync.health import Finding, Severity, State, evaluate
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_health import notify_outbox
from tests.health.factory import (
    NOW,
    add_assignments,
    add_devices,
    add_profile,
    add_run,
    add_token,
    beat,
)


async def found(db: Database, name: str = "school") -> dict[str, Finding]:
    """The findings of token ``name`` after evaluating everything at NOW."""
    health = await evaluate(db, now=NOW)
    for token in health.tokens:
        if token.label.name == name:
            return {seen.finding.code: seen.finding for seen in token.findings}
    raise AssertionError(f"token {name} was not evaluated")


async def found_alone(db: Database, token_id: int) -> dict[str, Finding]:
    """The findings of one token evaluated on its own (as after its sync)."""
    (token,) = (await evaluate(db, token_id=token_id, now=NOW)).tokens
    return {seen.finding.code: seen.finding for seen in token.findings}


async def set_token(db: Database, token_id: int, **values: object) -> None:
    async with db.write() as session:
        await session.execute(update(tokens).where(tokens.c.id == token_id).values(**values))


async def test_a_healthy_token_has_no_finding_at_all(db: Database) -> None:
    await add_token(db)
    await beat(db)
    health = await evaluate(db, now=NOW)
    assert [t.findings for t in health.tokens] == [()]
    assert health.installation == ()
    assert health.tokens[0].state is State.HEALTHY
    assert health.tokens[0].state_reason is None


async def test_token_expired_is_an_error(db: Database) -> None:
    await add_token(db, access_token_expiry=NOW - timedelta(hours=1))
    finding = (await found(db))["token_expired"]
    assert finding.severity is Severity.ERROR
    assert finding.data["expired_at"] == "2030-06-01T11:00:00Z"
    assert "token_expiring" not in await found(db)


@pytest.mark.parametrize(
    ("left", "days", "variant"),
    [
        (timedelta(days=10, hours=3), 10, None),
        (timedelta(days=1, hours=2), 1, "one"),
        (timedelta(hours=5), 0, "today"),
        (timedelta(days=30), 30, None),
    ],
)
async def test_token_expiring_within_thirty_days(
    db: Database, left: timedelta, days: int, variant: str | None
) -> None:
    await add_token(db, access_token_expiry=NOW + left)
    finding = (await found(db))["token_expiring"]
    assert finding.severity is Severity.WARNING
    assert finding.data["days_left"] == days
    assert finding.variant == variant


async def test_token_expiring_threshold_is_configurable(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_token(db, access_token_expiry=NOW + timedelta(days=40))
    assert "token_expiring" not in await found(db)
    monkeypatch.setenv("ADESYNC_EXPIRY_WARNING_DAYS", "60")
    assert "token_expiring" in await found(db)


async def test_terms_flag_makes_an_error_that_clears_with_the_flag(db: Database) -> None:
    token_id = await add_token(
        db,
        terms_not_accepted=True,
        last_error_code="terms_not_accepted",
        last_error_at=NOW - timedelta(hours=2),
        consecutive_failures=1,
        failing_since=NOW - timedelta(hours=2),
    )
    finding = (await found(db))["terms_not_accepted"]
    assert finding.severity is Severity.ERROR
    assert finding.data["since_at"] == "2030-06-01T10:00:00Z"
    await set_token(db, token_id, terms_not_accepted=False, consecutive_failures=0)
    assert "terms_not_accepted" not in await found(db)


async def test_token_rejected_unless_the_clock_explains_it(db: Database) -> None:
    token_id = await add_token(
        db, token_rejected=True, last_error_code="token_rejected", consecutive_failures=1
    )
    codes = await found(db)
    assert codes["token_rejected"].severity is Severity.ERROR
    assert "clock_skew" not in codes
    await set_token(db, token_id, clock_skew_seconds=620.0)
    codes = await found(db)
    assert "token_rejected" not in codes
    assert codes["clock_skew"].severity is Severity.ERROR
    assert codes["clock_skew"].variant == "rejected"


@pytest.mark.parametrize(
    ("skew", "code", "severity", "variant"),
    [
        (400.0, None, Severity.WARNING, None),
        (-400.0, None, Severity.WARNING, "behind"),
        (-700.0, "clock_skew", Severity.ERROR, "behind_rejected"),
    ],
)
async def test_clock_skew(
    db: Database, skew: float, code: str | None, severity: Severity, variant: str | None
) -> None:
    await add_token(
        db, clock_skew_seconds=skew, last_error_code=code, consecutive_failures=1 if code else 0
    )
    finding = (await found(db))["clock_skew"]
    assert (finding.severity, finding.variant) == (severity, variant)
    assert finding.data["skew_seconds"] == abs(int(skew))


async def test_a_small_skew_is_no_finding(db: Database) -> None:
    await add_token(db, clock_skew_seconds=120.0)
    assert await found(db) == {}


async def test_access_denied(db: Database) -> None:
    await add_token(db, access_denied=True, consecutive_failures=1, last_error_code="access_denied")
    assert (await found(db))["access_denied"].severity is Severity.ERROR


async def test_duplicate_server_names_the_other_tokens(db: Database) -> None:
    await add_token(db, "a", server_uuid="SAME")
    await add_token(db, "b", server_uuid="SAME")
    await add_token(db, "c")
    finding = (await found(db, "a"))["duplicate_server"]
    assert finding.data == {"server_uuid": "SAME", "others": "b"}
    assert finding.count == 2
    assert "duplicate_server" in await found(db, "b")
    assert "duplicate_server" not in await found(db, "c")


async def test_user_agent_rejected_only_while_failing(db: Database) -> None:
    token_id = await add_token(
        db,
        last_error_code="user_agent_rejected",
        last_error_body="USER_AGENT_INVALID",
        consecutive_failures=2,
    )
    assert (await found(db))["user_agent_rejected"].data["body"] == "USER_AGENT_INVALID"
    await set_token(db, token_id, consecutive_failures=0)
    assert "user_agent_rejected" not in await found(db)


@pytest.mark.parametrize(("hours", "severity"), [(30, Severity.WARNING), (80, Severity.ERROR)])
async def test_sync_stale_escalates(db: Database, hours: int, severity: Severity) -> None:
    await add_token(
        db,
        last_successful_sync_at=NOW - timedelta(hours=hours),
        last_error_code="apple_unavailable",
        last_error_at=NOW - timedelta(hours=1),
    )
    finding = (await found(db))["sync_stale"]
    assert finding.severity is severity
    assert finding.data["hours"] == hours
    assert finding.data["last_error_code"] == "apple_unavailable"
    assert finding.variant is None


async def test_sync_stale_without_a_later_error(db: Database) -> None:
    await add_token(
        db,
        last_successful_sync_at=NOW - timedelta(hours=25),
        last_error_code="apple_unavailable",
        last_error_at=NOW - timedelta(hours=40),
    )
    finding = (await found(db))["sync_stale"]
    assert finding.variant == "no_error"
    assert "last_error_code" not in finding.data


async def test_never_synced_after_an_hour(db: Database) -> None:
    await add_token(
        db, "old", last_successful_sync_at=None, token_added_at=NOW - timedelta(hours=2)
    )
    await add_token(
        db, "new", last_successful_sync_at=None, token_added_at=NOW - timedelta(minutes=10)
    )
    assert (await found(db, "old"))["never_synced"].variant == "no_error"
    assert "never_synced" not in await found(db, "new")


@pytest.mark.parametrize(("status", "variant"), [(503, None), (None, "network")])
async def test_apple_unavailable(db: Database, status: int | None, variant: str | None) -> None:
    await add_token(
        db,
        last_error_code="apple_unavailable",
        last_error_status=status,
        consecutive_failures=3,
        failing_since=NOW - timedelta(minutes=30),
    )
    finding = (await found(db))["apple_unavailable"]
    assert (finding.severity, finding.variant) == (Severity.WARNING, variant)
    assert finding.data["failures"] == 3


async def test_apple_throttled_is_info_and_leaves_the_token_healthy(db: Database) -> None:
    await add_token(db, throttled_until=NOW + timedelta(minutes=10))
    await beat(db)
    health = await evaluate(db, now=NOW)
    (token,) = health.tokens
    assert [s.finding.code for s in token.findings] == ["apple_throttled"]
    assert token.findings[0].finding.data["resumes_at"] == "2030-06-01T12:10:00Z"
    assert token.state is State.HEALTHY


async def test_throttled_serials(db: Database) -> None:
    token_id = await add_token(db)
    serials = await add_devices(db, token_id, 3)
    await add_assignments(
        db, token_id, serials, "THROTTLED", next_attempt_at=NOW + timedelta(minutes=1)
    )
    finding = (await found(db))["apple_throttled"]
    assert (finding.variant, finding.count) == ("serials", 3)


async def test_throttling_that_ended_is_no_finding(db: Database) -> None:
    await add_token(db, throttled_until=NOW - timedelta(minutes=1))
    assert await found(db) == {}


async def test_cursor_recovered_for_a_day(db: Database) -> None:
    token_id = await add_token(db)
    await add_run(db, token_id, cursor_recovered=True, started_at=NOW - timedelta(hours=2))
    assert (await found(db))["cursor_recovered"].severity is Severity.INFO


async def test_cursor_recovery_older_than_a_day_is_forgotten(db: Database) -> None:
    token_id = await add_token(db)
    await add_run(db, token_id, cursor_recovered=True, started_at=NOW - timedelta(hours=30))
    assert await found(db) == {}


async def test_no_default_profile(db: Database) -> None:
    await add_token(db, default_profile_uuid=None)
    assert (await found(db))["no_default_profile"].severity is Severity.WARNING


async def test_profile_rejected_by_apple_names_field_and_limit(db: Database) -> None:
    token_id = await add_token(
        db,
        profile_error_code="profile_invalid",
        profile_error_body='"CONFIG_URL_INVALID"',
        profile_error_at=NOW - timedelta(minutes=5),
        # A later error of another kind leaves the profile's problem standing.
        last_error_code="apple_unavailable",
        last_error_status=503,
        last_error_at=NOW - timedelta(minutes=1),
    )
    finding = (await found(db))["profile_invalid"]
    assert finding.severity is Severity.ERROR
    assert finding.data["field"] == "url"
    assert finding.data["limit"] == 2000
    await add_profile(db, token_id, '{"profile_name": "ok", "url": "https://x"}', defined_at=NOW)
    assert "profile_invalid" not in await found(db)


@pytest.mark.parametrize(
    ("body", "variant", "field"),
    [
        ("DEPARTMENT_REQUIRED", "required", "department"),
        ("FLAGS_INVALID", "flags", "is_mdm_removable"),
        ("LOCALE_INVALID", "locale", "language"),
    ],
)
async def test_profile_rejection_variants(
    db: Database, body: str, variant: str, field: str
) -> None:
    await add_token(
        db, profile_error_code="profile_invalid", profile_error_body=body, profile_error_at=NOW
    )
    finding = (await found(db))["profile_invalid"]
    assert (finding.variant, finding.data["field"]) == (variant, field)


async def test_a_stored_profile_that_breaks_apples_limits(db: Database) -> None:
    token_id = await add_token(db)
    await add_profile(db, token_id, '{"profile_name": "%s", "url": "https://x"}' % ("n" * 130))
    finding = (await found(db))["profile_invalid"]
    assert finding.variant == "stored"
    assert finding.data["field"] == "profile_name"
    assert finding.data["limit"] == 125


async def test_profile_not_found_clears_after_a_successful_assignment(db: Database) -> None:
    token_id = await add_token(
        db,
        profile_error_code="profile_not_found",
        profile_error_at=NOW - timedelta(minutes=5),
        last_error_code="apple_throttled",
        last_error_at=NOW - timedelta(minutes=1),
    )
    finding = (await found(db))["profile_not_found"]
    assert finding.data["profile_uuid"] == "PROFILE1"
    serials = await add_devices(db, token_id, 1)
    await add_assignments(db, token_id, serials, "SUCCESS", last_attempt_at=NOW)
    assert "profile_not_found" not in await found(db)


async def test_assignment_failed_counts_and_samples(db: Database) -> None:
    token_id = await add_token(db)
    inaccessible = await add_devices(db, token_id, 3, prefix="NA")
    failed = await add_devices(db, token_id, 2, prefix="FA")
    released = await add_devices(db, token_id, 1, prefix="GONE", deleted=True)
    await add_assignments(db, token_id, inaccessible, "NOT_ACCESSIBLE")
    await add_assignments(db, token_id, failed[:1], "FAILED", next_attempt_at=NOW)
    await add_assignments(db, token_id, failed[1:], "FAILED", attempts=4)
    await add_assignments(db, token_id, released, "FAILED")
    finding = (await found(db))["assignment_failed"]
    assert finding.count == 5
    assert finding.data == {"not_accessible": 3, "failed": 2, "gave_up": 1}
    # Samples are the first stored: the NOT_ACCESSIBLE assignments were written first.
    assert finding.samples == ("NA000000", "NA000001", "NA000002", "FA000000", "FA000001")
    assert (await found_alone(db, token_id))["assignment_failed"] == finding


async def test_devices_without_profile(db: Database) -> None:
    token_id = await add_token(db)
    await add_devices(db, token_id, 3, prefix="E", profile_status="empty")
    await add_devices(db, token_id, 1, prefix="R", profile_status="removed")
    await add_devices(db, token_id, 2, prefix="D", profile_status="empty", deleted=True)
    waiting = await add_devices(db, token_id, 1, prefix="W", profile_status="empty")
    await add_assignments(
        db, token_id, waiting, "THROTTLED", next_attempt_at=NOW + timedelta(minutes=5)
    )
    await add_devices(db, token_id, 5, prefix="OK")
    finding = (await found(db))["devices_without_profile"]
    assert finding.count == 4
    assert finding.samples == ("E000000", "E000001", "E000002", "R000000")
    assert finding.variant is None
    # One token on its own is counted token by token, with the same result.
    assert (await found_alone(db, token_id))["devices_without_profile"] == finding


async def test_token_over_capacity(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    token_id = await add_token(db)
    await add_devices(db, token_id, 4)
    await add_devices(db, token_id, 3, prefix="DEL", deleted=True)
    assert "token_over_capacity" not in await found(db)
    monkeypatch.setenv("ADESYNC_TOKEN_CAPACITY", "3")
    finding = (await found(db))["token_over_capacity"]
    assert finding.data == {"devices": 4, "capacity": 3}


async def test_token_over_capacity_counts_each_tokens_live_devices(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per token and live only, for every token or one; a token without credentials (not
    evaluated) is never reported."""
    monkeypatch.setenv("ADESYNC_TOKEN_CAPACITY", "3")
    big = await add_token(db, "big")
    small = await add_token(db, "small")
    pending = await add_token(db, "pending", oauth_credentials=None)
    await add_devices(db, big, 5, prefix="B")
    await add_devices(db, small, 3, prefix="S")
    await add_devices(db, small, 4, prefix="SD", deleted=True)
    await add_devices(db, pending, 6, prefix="P")
    health = await evaluate(db, now=NOW)
    over = {
        token.label.name: seen.finding.data
        for token in health.tokens
        for seen in token.findings
        if seen.finding.code == "token_over_capacity"
    }
    assert over == {"big": {"devices": 5, "capacity": 3}}
    for token_id, expected in ((big, ["token_over_capacity"]), (small, [])):
        one = await evaluate(db, token_id=token_id, now=NOW)
        codes = [s.finding.code for t in one.tokens for s in t.findings]
        assert [c for c in codes if c == "token_over_capacity"] == expected


def certificate_pem(not_after_days: int) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "adesync")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - timedelta(days=1000))
        .not_valid_after(NOW + timedelta(days=not_after_days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


async def test_certificate_expiring_uses_the_newest_certificate(db: Database) -> None:
    token_id = await add_token(db, active_certificates=certificate_pem(30))
    finding = (await found(db))["certificate_expiring"]
    assert finding.data["days_left"] == 30
    await set_token(db, token_id, active_certificates=certificate_pem(30) + certificate_pem(400))
    assert "certificate_expiring" not in await found(db)
    await set_token(db, token_id, active_certificates=certificate_pem(-3))
    assert (await found(db))["certificate_expiring"].variant == "expired"


async def test_scheduler_down(db: Database) -> None:
    health = await evaluate(db, now=NOW)
    assert health.installation == ()  # no token, nothing to sync
    await add_token(db)
    health = await evaluate(db, now=NOW)
    assert [(s.finding.code, s.finding.variant) for s in health.installation] == [
        ("scheduler_down", "never")
    ]
    await beat(db, NOW - timedelta(minutes=12))
    (seen,) = (await evaluate(db, now=NOW)).installation
    assert seen.finding.data["minutes"] == 12
    await beat(db, NOW - timedelta(seconds=20), worker="w2")
    assert (await evaluate(db, now=NOW)).installation == ()


async def test_personal_apple_id_is_info(db: Database) -> None:
    await add_token(db, admin_id="someone@iCloud.com")
    finding = (await found(db))["personal_apple_id"]
    assert finding.severity is Severity.INFO
    assert finding.data == {"admin_id": "someone@iCloud.com", "domain": "icloud.com"}


async def test_notifications_failing(db: Database) -> None:
    await add_token(db)
    await beat(db)
    async with db.write() as session:
        await session.execute(
            insert(notify_outbox).values(
                channel="webhook",
                event="token.state_changed",
                dedup_key="k1",
                payload="{}",
                attempts=3,
                created_at=NOW - timedelta(hours=1),
                next_attempt_at=NOW,
                last_attempt_at=NOW - timedelta(minutes=1),
                last_error="HTTP 500 from the receiver",
            )
        )
    (seen,) = (await evaluate(db, now=NOW)).installation
    assert seen.finding.code == "notifications_failing"
    assert seen.finding.data["channels"] == "webhook"
    assert seen.finding.data["last_error"] == "HTTP 500 from the receiver"


async def test_tokens_without_credentials_are_not_evaluated(db: Database) -> None:
    await add_token(db, "pending", oauth_credentials=None, default_profile_uuid=None)
    health = await evaluate(db, now=NOW)
    assert health.tokens == ()
