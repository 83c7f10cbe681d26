"""The /account check behind ``tokens add``/``renew``: identity read, refusals in one sentence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from adesync.config import load_settings
from adesync.errors import AdesyncError
from adesync.services.apple_account import AppleCheckFailed, make_verifier
from adesync.tokens import TokenPayload
from tests.apple.fake_apple import BASE_URL, CREDS, FakeApple, fixture_bytes, ok, text

PAYLOAD = TokenPayload(
    consumer_key=CREDS.consumer_key,
    consumer_secret=CREDS.consumer_secret,
    access_token=CREDS.access_token,
    access_secret=CREDS.access_secret,
    access_token_expiry=datetime.now(UTC) + timedelta(days=300),
)


async def test_the_identity_comes_from_apples_account_answer() -> None:
    apple = FakeApple()
    apple.route("GET", "/account", ok(fixture_bytes("micromdm/account_response.json")))
    verify = make_verifier(load_settings(), transport=httpx.MockTransport(apple.handler))
    identity = await verify(PAYLOAD, BASE_URL)
    assert identity.server_uuid == "6666ED66666666666666666666666666"
    assert identity.server_name == "dev"
    assert identity.org_name == "Acme, Inc"
    assert identity.admin_id == "apple-dep@acme.co"
    assert identity.org_type == "org"
    assert identity.org_version == "v2"
    assert apple.calls("/session")[0].headers["User-Agent"].startswith("adesync/")


async def test_the_user_agent_setting_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADESYNC_USER_AGENT", "acme-mdm/9")
    apple = FakeApple()
    apple.route("GET", "/account", ok(fixture_bytes("account_detail.json")))
    verify = make_verifier(transport=httpx.MockTransport(apple.handler))
    await verify(PAYLOAD, BASE_URL)
    assert apple.calls("/account")[0].headers["User-Agent"] == "acme-mdm/9"


@pytest.mark.parametrize(
    ("path", "answer", "code", "words"),
    [
        ("/account", text(403, "T_C_NOT_SIGNED"), "terms_not_accepted", "accept them"),
        ("/session", text(403, '"T_C_NOT_SIGNED"'), "terms_not_accepted", "accept them"),
        ("/session", text(401, "UNAUTHORIZED"), "token_rejected", "most recent token"),
        ("/account", text(403, "ACCESS_DENIED"), "access_denied", "still exists"),
        ("/session", text(400, "USER_AGENT_INVALID"), "user_agent_rejected", "ADESYNC_USER_AGENT"),
        ("/account", text(503, "", {"Retry-After": "3600"}), "apple_throttled", "wait until"),
        ("/account", text(404, "NOT_FOUND"), "unexpected", "Apple service URL"),
        ("/account", ok({"server_name": "no uuid"}), "unexpected", "server_uuid"),
    ],
)
async def test_every_refusal_is_one_clear_sentence_with_the_apple_code(
    path: str, answer: httpx.Response, code: str, words: str
) -> None:
    apple = FakeApple()
    apple.route("GET", "/account", ok(fixture_bytes("account_detail.json")))
    apple.once("GET", path, answer)
    verify = make_verifier(load_settings(), transport=httpx.MockTransport(apple.handler))
    with pytest.raises(AppleCheckFailed) as caught:
        await verify(PAYLOAD, BASE_URL)
    error = caught.value
    assert isinstance(error, AdesyncError)
    assert error.code == code
    assert words in error.message
    assert error.message.count(". ") == 0 and error.message.endswith(".")
    assert "\n" not in error.message


async def test_an_unreachable_service_names_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    pauses: list[float] = []

    async def record(seconds: float) -> None:
        pauses.append(seconds)

    verify = make_verifier(load_settings(), transport=httpx.MockTransport(refuse), sleep=record)
    with pytest.raises(AppleCheckFailed) as caught:
        await verify(PAYLOAD, BASE_URL)
    assert caught.value.code == "apple_unavailable"
    assert BASE_URL in caught.value.message
    assert "ConnectError" in caught.value.message
    assert caught.value.http_status == 503
    assert len(pauses) == 3


async def test_a_sign_in_refused_while_the_clock_is_off_says_fix_the_clock() -> None:
    apple = FakeApple(clock_offset=timedelta(minutes=-12))
    apple.once("GET", "/session", text(401, "UNAUTHORIZED"))
    verify = make_verifier(load_settings(), transport=httpx.MockTransport(apple.handler))
    with pytest.raises(AppleCheckFailed) as caught:
        await verify(PAYLOAD, BASE_URL)
    assert caught.value.code == "clock_skew"
    assert "NTP" in caught.value.message
