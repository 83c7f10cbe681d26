"""Classification of every Apple answer into the closed set of client codes (findings.md)."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest

from adesync.apple import CLIENT_CODES, AppleError, ProfileInvalid, TermsNotAccepted
from adesync.apple.errors import classify, error_for_code, reason_code

CONTRACT_CODES = {
    "terms_not_accepted",
    "token_rejected",
    "access_denied",
    "session_invalid",
    "user_agent_rejected",
    "apple_throttled",
    "apple_unavailable",
    "cursor_expired",
    "cursor_invalid",
    "cursor_exhausted",
    "cursor_required",
    "profile_invalid",
    "profile_not_found",
    "malformed_request",
    "unexpected",
    "clock_skew",
}


def test_the_client_codes_are_exactly_the_contract() -> None:
    assert set(CLIENT_CODES) == CONTRACT_CODES
    for code in CONTRACT_CODES:
        assert error_for_code(code).code == code
        assert issubclass(error_for_code(code), AppleError)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("INVALID_CURSOR", "INVALID_CURSOR"),
        ('"INVALID_CURSOR"', "INVALID_CURSOR"),
        ('  "EXPIRED_CURSOR"\r\n', "EXPIRED_CURSOR"),
        ('{"code": "T_C_NOT_SIGNED"}', "T_C_NOT_SIGNED"),
        ('{"code":"T_C_NOT_SIGNED","message":"x"}', "T_C_NOT_SIGNED"),
        ('{"not json', '{"not json'),
        ("", ""),
    ],
)
def test_reason_code_strips_quotes_whitespace_and_reads_json(body: str, code: str) -> None:
    assert reason_code(body) == code


CASES = [
    # (endpoint, status, body, code, field)
    ("/account", 403, "T_C_NOT_SIGNED", "terms_not_accepted", None),
    ("/session", 403, '"T_C_NOT_SIGNED"', "terms_not_accepted", None),
    ("/account", 403, '{"code": "T_C_NOT_SIGNED"}', "terms_not_accepted", None),
    ("/session", 401, "UNAUTHORIZED", "token_rejected", None),
    (
        "/session",
        401,
        "oauth_problem=token_rejected&oauth_problem_advice=x",
        "token_rejected",
        None,
    ),
    ("/account", 403, '"token_rejected"', "token_rejected", None),
    ("/account", 403, "signature_invalid", "token_rejected", None),
    ("/server/devices", 401, "oauth_problem=token_rejected", "token_rejected", None),
    ("/account", 403, "ACCESS_DENIED", "access_denied", None),
    ("/session", 403, "ACCESS_DENIED", "access_denied", None),
    ("/account", 401, "UNAUTHORIZED", "session_invalid", None),
    ("/devices/sync", 403, '"FORBIDDEN"', "session_invalid", None),
    ("/session", 403, "FORBIDDEN", "token_rejected", None),
    ("/account", 400, "USER_AGENT_MISSING", "user_agent_rejected", None),
    ("/session", 400, '"USER_AGENT_INVALID"', "user_agent_rejected", None),
    ("/session", 429, '"TOO_MANY_REQUESTS"', "apple_throttled", None),
    ("/account", 500, "", "apple_unavailable", None),
    ("/account", 502, "Bad Gateway", "apple_unavailable", None),
    ("/account", 503, "Service Unavailable", "apple_unavailable", None),
    ("/devices/sync", 400, "EXPIRED_CURSOR", "cursor_expired", None),
    ("/devices/sync", 400, '"INVALID_CURSOR"', "cursor_invalid", None),
    ("/server/devices", 400, "EXHAUSTED_CURSOR", "cursor_exhausted", None),
    ("/devices/sync", 400, "CURSOR_REQUIRED", "cursor_required", None),
    ("/profile", 400, "CONFIG_NAME_INVALID", "profile_invalid", "CONFIG_NAME_INVALID"),
    ("/profile", 400, '"CONFIG_URL_INVALID"', "profile_invalid", "CONFIG_URL_INVALID"),
    ("/profile", 400, "SUPPORT_PHONE_INVALID", "profile_invalid", "SUPPORT_PHONE_INVALID"),
    ("/profile", 400, "SUPPORT_EMAIL_INVALID", "profile_invalid", "SUPPORT_EMAIL_INVALID"),
    ("/profile", 400, "DEPARTMENT_INVALID", "profile_invalid", "DEPARTMENT_INVALID"),
    ("/profile", 400, "MAGIC_INVALID", "profile_invalid", "MAGIC_INVALID"),
    ("/profile", 400, "FLAGS_INVALID", "profile_invalid", "FLAGS_INVALID"),
    ("/profile", 400, "LOCALE_INVALID", "profile_invalid", "LOCALE_INVALID"),
    ("/profile", 400, "CONFIG_URL_REQUIRED", "profile_invalid", "CONFIG_URL_REQUIRED"),
    ("/profile", 400, '"CONFIG_NAME_REQUIRED"', "profile_invalid", "CONFIG_NAME_REQUIRED"),
    ("/profile", 400, "DEPARTMENT_REQUIRED", "profile_invalid", "DEPARTMENT_REQUIRED"),
    ("/profile", 400, "SUPPORT_PHONE_REQUIRED", "profile_invalid", "SUPPORT_PHONE_REQUIRED"),
    ("/profile", 404, "NOT_FOUND", "profile_not_found", None),
    ("/profile/devices", 404, '"NOT_FOUND"', "profile_not_found", None),
    ("/profile/devices", 400, "PROFILE_NOT_FOUND", "profile_not_found", None),
    ("/profile", 400, "MALFORMED_REQUEST_BODY", "malformed_request", None),
    ("/devices", 400, "DEVICE_ID_REQUIRED", "malformed_request", None),
    ("/profile/devices", 400, "DEVICE_ID_REQUIRED", "malformed_request", None),
    ("/profile", 400, "PROFILE_UUID_REQUIRED", "malformed_request", None),
    ("/account", 404, "NOT_FOUND", "unexpected", None),
    ("/account", 405, "", "unexpected", None),
    ("/account", 403, "", "unexpected", None),
    ("/account", 400, "SOMETHING_NEW", "unexpected", None),
    ("/account", 418, "teapot", "unexpected", None),
]


@pytest.mark.parametrize(("endpoint", "status", "body", "code", "field"), CASES)
def test_every_answer_maps_to_one_client_code(
    endpoint: str, status: int, body: str, code: str, field: str | None
) -> None:
    error = classify(endpoint=endpoint, status=status, body=body)
    assert error.code == code
    assert error.field == field
    assert error.status == status
    assert error.endpoint == endpoint
    assert error.body == body


def test_a_503_with_retry_after_is_throttling_and_keeps_when_it_ends() -> None:
    until = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    error = classify(endpoint="/account", status=503, body="", retry_at=until)
    assert error.code == "apple_throttled"
    assert error.retry_at == until
    assert "2030-01-01 12:00:00 UTC" in str(error)


def test_a_replayed_401_is_token_rejected() -> None:
    error = classify(endpoint="/account", status=401, body="UNAUTHORIZED", after_relogin=True)
    assert error.code == "token_rejected"


@pytest.mark.parametrize(
    ("skew", "code"),
    [(301, "clock_skew"), (-600, "clock_skew"), (299, "token_rejected"), (None, "token_rejected")],
)
def test_a_session_401_is_clock_skew_only_beyond_five_minutes(
    skew: float | None, code: str
) -> None:
    error = classify(endpoint="/session", status=401, body="UNAUTHORIZED", clock_skew_seconds=skew)
    assert error.code == code


def test_clock_skew_never_explains_a_401_on_other_calls() -> None:
    error = classify(endpoint="/account", status=401, body="UNAUTHORIZED", clock_skew_seconds=3600)
    assert error.code == "session_invalid"


def test_the_body_is_truncated_to_one_kib_and_the_message_is_one_short_sentence() -> None:
    error = classify(endpoint="/account", status=500, body="x" * 5000)
    assert len(error.body) == 1024
    message = str(error)
    assert message.endswith(".")
    assert "\n" not in message
    assert len(message) < 400


def test_messages_name_the_cause_the_endpoint_and_the_answer() -> None:
    error = classify(endpoint="/account", status=403, body='"T_C_NOT_SIGNED"')
    assert isinstance(error, TermsNotAccepted)
    assert str(error).startswith("Apple refused the call because the organisation has not accepted")
    assert "/account" in str(error) and "HTTP 403" in str(error)
    profile = classify(endpoint="/profile", status=400, body="CONFIG_NAME_INVALID")
    assert isinstance(profile, ProfileInvalid)
    assert "CONFIG_NAME_INVALID" in str(profile)


def test_errors_survive_pickling() -> None:
    error = classify(
        endpoint="/account",
        status=429,
        body="TOO_MANY_REQUESTS",
        retry_at=datetime.now(UTC) + timedelta(seconds=60),
    )
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is type(error)
    assert (copy.code, copy.status, copy.body, copy.retry_at) == (
        error.code,
        error.status,
        error.body,
        error.retry_at,
    )
    assert str(copy) == str(error)
