"""Retry rules: backoff for failures, Retry-After for throttling, never a blind profile repeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from adesync.apple import AppleError
from adesync.apple.retry import RetryPolicy, parse_http_date, parse_retry_after
from tests.apple.fake_apple import FakeApple, Handler, fixture_bytes, ok, text

NOW = datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def apple() -> FakeApple:
    fake = FakeApple()
    fake.route("GET", "/account", lambda _r: ok(fixture_bytes("account_detail.json")))
    fake.route("POST", "/profile", ok(fixture_bytes("define_profile_response.json")))
    return fake


def _raise(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


# -- Retry-After parsing ---------------------------------------------------------------------


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("120", now=NOW) == NOW + timedelta(seconds=120)
    assert parse_retry_after(" 0 ", now=NOW) == NOW


def test_retry_after_as_an_http_date_is_measured_against_apples_clock() -> None:
    apple_date = NOW + timedelta(hours=1)  # Apple's clock is an hour ahead of ours
    value = format_datetime(apple_date + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(value, now=NOW, apple_date=apple_date) == NOW + timedelta(seconds=90)
    assert parse_retry_after(value, now=NOW) == NOW + timedelta(seconds=3690)


def test_a_retry_after_in_the_past_means_now_and_garbage_means_unknown() -> None:
    past = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(past, now=NOW) == NOW
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after("", now=NOW) is None
    assert parse_retry_after(None, now=NOW) is None
    assert parse_retry_after("9" * 40, now=NOW) is not None  # absurd but not a crash


def test_http_dates_parse_to_aware_utc() -> None:
    assert parse_http_date("Wed, 01 May 2030 12:00:00 GMT") == NOW
    assert parse_http_date("not a date") is None
    assert parse_http_date(None) is None


def test_backoff_grows_is_capped_and_jittered() -> None:
    low = RetryPolicy(backoff_base=0.5, backoff_max=8.0, jitter=lambda: 0.0)
    high = RetryPolicy(backoff_base=0.5, backoff_max=8.0, jitter=lambda: 1.0)
    assert [high.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert [low.backoff(n) for n in range(1, 4)] == [0.25, 0.5, 1.0]


# -- through the client ----------------------------------------------------------------------


async def test_server_errors_are_retried_with_growing_backoff_then_succeed(
    apple: FakeApple,
) -> None:
    apple.once("GET", "/account", text(500, ""), text(502, "Bad Gateway"))
    sleeps: list[float] = []
    async with apple.client(sleeps=sleeps) as client:
        account = await client.account()
    assert account.server_name == "Example Server"
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


async def test_persistent_server_errors_become_apple_unavailable_after_max_attempts(
    apple: FakeApple,
) -> None:
    apple.route("GET", "/account", text(500, "Internal Server Error"))
    sleeps: list[float] = []
    async with apple.client(sleeps=sleeps, max_attempts=3) as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == "apple_unavailable"
    assert caught.value.status == 500
    assert len(apple.calls("/account")) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
)
async def test_network_failures_are_retried_then_apple_unavailable(
    apple: FakeApple, exc: Exception
) -> None:
    apple.route("GET", "/account", _raise(exc))
    sleeps: list[float] = []
    async with apple.client(sleeps=sleeps) as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == "apple_unavailable"
    assert caught.value.status is None
    assert type(exc).__name__ in str(caught.value)
    assert len(apple.calls("/account")) == 4
    assert len(sleeps) == 3


async def test_a_network_failure_on_login_is_retried(apple: FakeApple) -> None:
    apple.once("GET", "/session", _raise(httpx.ConnectError("refused")))
    async with apple.client() as client:
        await client.account()
    assert apple.logins == 1
    assert len(apple.calls("/session")) == 2


async def test_429_with_retry_after_seconds_waits_that_long(apple: FakeApple) -> None:
    apple.once("GET", "/account", text(429, "TOO_MANY_REQUESTS", {"Retry-After": "7"}))
    sleeps: list[float] = []
    async with apple.client(sleeps=sleeps) as client:
        await client.account()
    assert len(sleeps) == 1 and 6.0 <= sleeps[0] <= 7.0


async def test_503_with_an_http_date_retry_after_waits_until_then(apple: FakeApple) -> None:
    def busy(_request: httpx.Request) -> httpx.Response:
        now = datetime.now(UTC)
        return text(
            503,
            "Service Unavailable",
            {
                "Date": format_datetime(now, usegmt=True),
                "Retry-After": format_datetime(now + timedelta(seconds=20), usegmt=True),
            },
        )

    apple.once("GET", "/account", busy)
    sleeps: list[float] = []
    async with apple.client(sleeps=sleeps) as client:
        await client.account()
    assert len(sleeps) == 1 and 18.0 <= sleeps[0] <= 21.0


async def test_a_retry_after_beyond_the_cap_raises_apple_throttled_with_its_end(
    apple: FakeApple,
) -> None:
    apple.route("GET", "/account", text(503, "", {"Retry-After": "120"}))
    sleeps: list[float] = []
    before = datetime.now(UTC)
    async with apple.client(sleeps=sleeps, max_retry_after=30) as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == "apple_throttled"
    assert caught.value.retry_at is not None
    assert before + timedelta(seconds=119) <= caught.value.retry_at
    assert caught.value.retry_at <= datetime.now(UTC) + timedelta(seconds=121)
    assert sleeps == []
    assert len(apple.calls("/account")) == 1


async def test_throttling_that_never_ends_stops_at_max_attempts(apple: FakeApple) -> None:
    apple.route("GET", "/account", text(429, "TOO_MANY_REQUESTS", {"Retry-After": "1"}))
    sleeps: list[float] = []
    async with apple.client(sleeps=sleeps, max_attempts=3) as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == "apple_throttled"
    assert len(apple.calls("/account")) == 3
    assert len(sleeps) == 2


async def test_a_throttled_login_is_honoured_too(apple: FakeApple) -> None:
    apple.once("GET", "/session", text(429, '"TOO_MANY_REQUESTS"', {"Retry-After": "2"}))
    sleeps: list[float] = []
    async with apple.client(sleeps=sleeps) as client:
        await client.account()
    assert len(sleeps) == 1 and apple.logins == 1


async def test_a_503_without_retry_after_backs_off_like_any_5xx(apple: FakeApple) -> None:
    apple.once("GET", "/account", text(503, "Service Unavailable"))
    sleeps: list[float] = []
    async with apple.client(sleeps=sleeps) as client:
        await client.account()
    assert len(sleeps) == 1 and sleeps[0] <= 0.5


async def test_client_errors_are_never_retried(apple: FakeApple) -> None:
    apple.route("GET", "/account", text(403, "ACCESS_DENIED"))
    sleeps: list[float] = []
    async with apple.client(sleeps=sleeps) as client:
        with pytest.raises(AppleError):
            await client.account()
    assert sleeps == [] and len(apple.calls("/account")) == 1


PROFILE = {"profile_name": "Staff", "url": "https://mdm.example.edu/enroll"}


@pytest.mark.parametrize(
    "answer",
    [
        text(500, ""),
        text(503, "", {"Retry-After": "1"}),
        _raise(httpx.ReadTimeout("timed out")),
        _raise(httpx.RemoteProtocolError("peer closed connection")),
    ],
)
async def test_a_profile_definition_is_never_repeated_once_apple_may_have_acted(
    apple: FakeApple, answer: httpx.Response | Handler
) -> None:
    apple.once("POST", "/profile", answer)
    sleeps: list[float] = []
    async with apple.client(sleeps=sleeps) as client:
        with pytest.raises(AppleError) as caught:
            await client.define_profile(PROFILE)
    assert caught.value.code in {"apple_unavailable", "apple_throttled"}
    assert len(apple.calls("/profile")) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "answer",
    [
        text(429, "TOO_MANY_REQUESTS", {"Retry-After": "1"}),
        _raise(httpx.ConnectError("connection refused")),
    ],
)
async def test_a_profile_definition_apple_never_received_is_retried(
    apple: FakeApple, answer: httpx.Response | Handler
) -> None:
    apple.once("POST", "/profile", answer)
    async with apple.client() as client:
        result = await client.define_profile(PROFILE)
    assert result.profile_uuid == "88fc4e378fea4021a94b2d7268fbf767"
    assert len(apple.calls("/profile")) == 2


async def test_a_profile_definition_survives_a_failed_login(apple: FakeApple) -> None:
    apple.once("GET", "/session", text(500, ""))
    async with apple.client() as client:
        await client.define_profile(PROFILE)
    assert len(apple.calls("/profile")) == 1
    assert len(apple.calls("/session")) == 2


async def test_a_profile_definition_is_replayed_after_an_expired_session(apple: FakeApple) -> None:
    async with apple.client() as client:
        await client.account()
        apple.once("POST", "/profile", text(401, "UNAUTHORIZED"))
        await client.define_profile(PROFILE)
    assert len(apple.calls("/profile")) == 2
    assert apple.logins == 2
