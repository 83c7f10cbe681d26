"""The session flow: OAuth login, session reuse and rotation, re-login once, concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from adesync.apple import (
    AppleError,
    OAuthCredentials,
    SessionCache,
)
from tests.apple.fake_apple import CREDS, FakeApple, fixture_bytes, oauth_signature_valid, ok, text

ACCOUNT = fixture_bytes("account_detail.json")


@pytest.fixture
def apple() -> FakeApple:
    fake = FakeApple()
    fake.route("GET", "/account", lambda _r: ok(ACCOUNT))
    return fake


async def test_login_signs_get_session_with_oauth_hmac_sha1_in_realm_adm(apple: FakeApple) -> None:
    async with apple.client(user_agent="acme-mdm/2.1", protocol_version=9) as client:
        await client.account()
    (login,) = apple.calls("/session")
    assert login.method == "GET"
    assert oauth_signature_valid(login, CREDS)
    authorization = login.headers["Authorization"]
    assert authorization.startswith('OAuth realm="ADM"')
    assert 'oauth_version="1.0"' in authorization
    assert login.headers["Content-Type"] == "application/json;charset=UTF8"
    assert login.headers["User-Agent"] == "acme-mdm/2.1"
    assert login.headers["X-Server-Protocol-Version"] == "9"
    assert "X-ADM-Auth-Session" not in login.headers
    assert login.content == b""


async def test_a_wrong_secret_is_refused_by_the_independent_signature_check() -> None:
    wrong = OAuthCredentials(
        consumer_key=CREDS.consumer_key,
        consumer_secret=CREDS.consumer_secret,
        access_token=CREDS.access_token,
        access_secret="AS_not_the_right_one",
    )
    apple = FakeApple()
    async with apple.client(creds=wrong) as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == "token_rejected"
    assert caught.value.endpoint == "/session"


async def test_the_session_is_sent_on_calls_and_reused(apple: FakeApple) -> None:
    async with apple.client() as client:
        for _ in range(3):
            await client.account()
    assert apple.logins == 1
    sent = [r.headers["X-ADM-Auth-Session"] for r in apple.calls("/account")]
    assert sent == ["session-1"] * 3


async def test_a_rotated_session_header_is_adopted(apple: FakeApple) -> None:
    apple.rotate_every = 1
    async with apple.client() as client:
        for _ in range(3):
            await client.account()
    sent = [r.headers["X-ADM-Auth-Session"] for r in apple.calls("/account")]
    assert sent == ["session-1", "rotated-1", "rotated-2"]
    assert apple.logins == 1


async def test_401_logs_in_again_and_replays_once(apple: FakeApple) -> None:
    async with apple.client() as client:
        await client.account()
        apple.once(
            "GET", "/account", text(401, "UNAUTHORIZED", {"WWW-Authenticate": "ADM-Auth-Token"})
        )
        account = await client.account()
    assert account.server_name == "Example Server"
    assert apple.logins == 2
    sent = [r.headers["X-ADM-Auth-Session"] for r in apple.calls("/account")]
    assert sent == ["session-1", "session-1", "session-2"]


async def test_403_forbidden_after_a_simulator_restart_logs_in_again(apple: FakeApple) -> None:
    async with apple.client() as client:
        await client.account()
        apple.restart()  # old sessions now answer 403 "FORBIDDEN" (quoted, as the simulator does)
        account = await client.account()
    assert account.server_uuid == "677cab70-fe18-11e2-b778-0800200c9a66"
    assert apple.logins == 2


async def test_a_401_that_survives_the_replay_is_token_rejected_and_never_loops(
    apple: FakeApple,
) -> None:
    apple.route("GET", "/account", text(401, "UNAUTHORIZED"))
    async with apple.client() as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == "token_rejected"
    assert caught.value.status == 401
    assert caught.value.endpoint == "/account"
    assert apple.logins == 2
    assert len(apple.calls("/account")) == 2


class _Body(httpx.AsyncByteStream):
    """A body that arrives as a stream, as it does over a real connection."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._content


def streamed(status: int, body: str) -> httpx.Response:
    return httpx.Response(
        status, stream=_Body(body.encode()), headers={"Content-Type": "text/plain;Charset=UTF8"}
    )


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [(401, "UNAUTHORIZED", "token_rejected"), (403, "FORBIDDEN", "session_invalid")],
)
async def test_a_streamed_refusal_after_the_relogin_is_read_and_classified(
    apple: FakeApple, status: int, body: str, code: str
) -> None:
    apple.route("GET", "/account", lambda _request: streamed(status, body))
    async with apple.client() as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert (caught.value.code, caught.value.status, caught.value.body) == (code, status, body)
    assert apple.logins == 2


async def test_a_forbidden_that_survives_the_replay_is_session_invalid(apple: FakeApple) -> None:
    apple.route("GET", "/account", text(403, "FORBIDDEN"))
    async with apple.client() as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == "session_invalid"
    assert len(apple.calls("/account")) == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("T_C_NOT_SIGNED", "terms_not_accepted"),
        ('"T_C_NOT_SIGNED"', "terms_not_accepted"),
        ('{"code": "T_C_NOT_SIGNED"}', "terms_not_accepted"),
        ("ACCESS_DENIED", "access_denied"),
        ('"ACCESS_DENIED"\n', "access_denied"),
    ],
)
async def test_terms_and_access_denied_never_trigger_a_new_login(
    apple: FakeApple, body: str, code: str
) -> None:
    apple.route("GET", "/account", text(403, body))
    async with apple.client() as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == code
    assert apple.logins == 1
    assert len(apple.calls("/account")) == 1


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (403, "T_C_NOT_SIGNED", "terms_not_accepted"),
        (403, "ACCESS_DENIED", "access_denied"),
        (401, "UNAUTHORIZED", "token_rejected"),
        (401, "oauth_problem=token_rejected&oauth_problem_advice=revoked", "token_rejected"),
        (403, '"token_rejected"', "token_rejected"),
        (403, "signature_invalid", "token_rejected"),
        (400, "USER_AGENT_INVALID", "user_agent_rejected"),
        (405, "", "unexpected"),
    ],
)
async def test_session_refusals_are_classified_on_the_session_endpoint(
    apple: FakeApple, status: int, body: str, code: str
) -> None:
    apple.once("GET", "/session", text(status, body))
    async with apple.client() as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == code
    assert caught.value.endpoint == "/session"
    assert caught.value.status == status
    assert apple.calls("/account") == []


async def test_a_session_401_with_apple_clock_far_off_is_clock_skew(apple: FakeApple) -> None:
    apple.once(
        "GET",
        "/session",
        lambda _r: text(
            401,
            "UNAUTHORIZED",
            {"Date": format_datetime(_now() + timedelta(minutes=9), usegmt=True)},
        ),
    )
    async with apple.client() as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
        assert client.clock_skew_seconds is not None
        assert client.clock_skew_seconds < -500
    assert caught.value.code == "clock_skew"
    assert "clock" in str(caught.value)


async def test_a_session_401_within_five_minutes_of_apple_is_token_rejected(
    apple: FakeApple,
) -> None:
    apple.once(
        "GET",
        "/session",
        lambda _r: text(
            401,
            "UNAUTHORIZED",
            {"Date": format_datetime(_now() - timedelta(minutes=4), usegmt=True)},
        ),
    )
    async with apple.client() as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == "token_rejected"


async def test_a_session_answer_without_a_token_is_unexpected(apple: FakeApple) -> None:
    apple.once("GET", "/session", ok({"auth_session_token": ""}))
    async with apple.client() as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == "unexpected"
    assert "auth_session_token" in str(caught.value)


async def test_fifty_concurrent_calls_log_in_once(apple: FakeApple) -> None:
    async with apple.client() as client:
        results = await asyncio.gather(*(client.account() for _ in range(50)))
    assert len(results) == 50
    assert apple.logins == 1
    assert len(apple.calls("/session")) == 1


async def test_fifty_concurrent_calls_on_an_expired_session_log_in_again_once(
    apple: FakeApple,
) -> None:
    async with apple.client() as client:
        await client.account()
        apple.restart()
        await asyncio.gather(*(client.account() for _ in range(50)))
    assert apple.logins == 2


async def test_clients_sharing_a_session_cache_share_the_session(apple: FakeApple) -> None:
    cache = SessionCache()
    async with (
        apple.client(session_cache=cache) as first,
        apple.client(session_cache=cache) as second,
    ):
        await first.account()
        await second.account()
    assert apple.logins == 1
    assert cache.logins == 1


async def test_different_tokens_never_share_a_session(apple: FakeApple) -> None:
    cache = SessionCache()
    other = OAuthCredentials(
        consumer_key=CREDS.consumer_key,
        consumer_secret=CREDS.consumer_secret,
        access_token="AT_other",
        access_secret=CREDS.access_secret,
    )
    second_apple = FakeApple(creds=other)
    second_apple.route("GET", "/account", lambda _r: ok(ACCOUNT))
    async with (
        apple.client(session_cache=cache) as first,
        second_apple.client(session_cache=cache) as second,
    ):
        await first.account()
        await second.account()
    assert apple.logins == 1
    assert second_apple.logins == 1


async def test_a_base_url_with_a_path_prefix_signs_and_routes_under_it() -> None:
    apple = FakeApple(base_path="/proxy/acme")
    apple.route("GET", "/account", lambda _r: ok(ACCOUNT))
    async with apple.client() as client:
        await client.account()
        apple.route("GET", "/account", text(401, "UNAUTHORIZED"))
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert apple.calls("/session")[0].url.path == "/proxy/acme/session"
    assert caught.value.endpoint == "/account"


def test_credentials_need_all_four_values_and_hide_secrets() -> None:
    with pytest.raises(ValueError, match="access_secret"):
        OAuthCredentials(
            consumer_key="CK", consumer_secret="CS", access_token="AT", access_secret=""
        )
    assert "CS_" not in repr(CREDS) and "AS_" not in repr(CREDS)


def test_the_client_refuses_synchronous_use() -> None:
    from adesync.apple.auth import SessionAuth

    auth = SessionAuth(CREDS, base_url="http://127.0.0.1:8080", cache=SessionCache())
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    with httpx.Client(transport=transport) as client, pytest.raises(RuntimeError, match="asynch"):
        client.get("http://127.0.0.1:8080/account", auth=auth)


def _now() -> datetime:
    return datetime.now(UTC)
