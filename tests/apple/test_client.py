"""Every endpoint: method, path, body, headers, paging, chunking and the typed answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import metadata

import httpx
import pytest

from adesync.apple import (
    DEFAULT_BASE_URL,
    AppleClient,
    AppleError,
    DevicePage,
    Profile,
)
from tests.apple.fake_apple import CREDS, FakeApple, body_of, fixture_bytes, ok, text


@pytest.fixture
def apple() -> FakeApple:
    fake = FakeApple()
    fake.route("GET", "/account", lambda _r: ok(fixture_bytes("account_detail.json")))
    return fake


def test_the_default_base_url_is_apples() -> None:
    assert DEFAULT_BASE_URL == "https://mdmenrollment.apple.com"


def test_bad_options_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="http"):
        AppleClient(CREDS, base_url="ftp://127.0.0.1")
    with pytest.raises(ValueError, match="user_agent"):
        AppleClient(CREDS, user_agent=" ")
    with pytest.raises(ValueError, match="max_attempts"):
        AppleClient(CREDS, max_attempts=0)


async def test_calls_carry_a_distinctive_user_agent_protocol_10_and_json_types(
    apple: FakeApple,
) -> None:
    apple.route("POST", "/devices/disown", ok(fixture_bytes("device_status_response.json")))
    async with apple.client() as client:
        await client.account()
        await client.disown_devices(["C8TJ500QF1MN"])
    account_call = apple.calls("/account")[0]
    version = metadata.version("adesync")
    assert account_call.headers["User-Agent"] == f"adesync/{version}"
    assert account_call.headers["X-Server-Protocol-Version"] == "10"
    assert account_call.headers["Accept"] == "application/json"
    assert "Content-Type" not in account_call.headers
    disown = apple.calls("/devices/disown")[0]
    assert disown.headers["Content-Type"] == "application/json;charset=UTF8"


async def test_user_agent_and_protocol_version_are_configurable(apple: FakeApple) -> None:
    async with apple.client(user_agent="acme-mdm/3.0", protocol_version=7) as client:
        await client.account()
    call = apple.calls("/account")[0]
    assert call.headers["User-Agent"] == "acme-mdm/3.0"
    assert call.headers["X-Server-Protocol-Version"] == "7"


async def test_account_is_parsed_with_identity_and_limits(apple: FakeApple) -> None:
    async with apple.client() as client:
        account = await client.account()
    assert account.server_name == "Example Server"
    assert account.server_uuid == "677cab70-fe18-11e2-b778-0800200c9a66"
    assert account.admin_id == "dep.admin@example.edu"
    assert account.org_type == "edu"
    assert account.page_size("/server/devices") == 1000


async def test_apples_date_header_is_recorded_with_the_skew(apple: FakeApple) -> None:
    apple.clock_offset = timedelta(minutes=-7)
    async with apple.client() as client:
        assert client.last_apple_date is None
        await client.account()
        assert client.last_apple_date is not None
        assert client.last_apple_date.tzinfo is not None
        assert client.clock_skew_seconds is not None
        assert 418 < client.clock_skew_seconds < 423


async def test_fetch_sizes_pages_from_the_account_capped_at_1000_and_caches_it() -> None:
    apple = FakeApple()
    apple.route("GET", "/account", ok(fixture_bytes("micromdm/account_response.json")))  # 5000
    apple.route("POST", "/server/devices", ok(fixture_bytes("fetch_page_last.json")))
    apple.route("POST", "/devices/sync", ok(fixture_bytes("sync_page.json")))
    async with apple.client() as client:
        await client.fetch_devices()
        await client.sync_devices("MTY1NzI2ODE5Ny0y")
        await client.fetch_devices(cursor="abc", limit=50)
    fetches = apple.calls("/server/devices")
    assert body_of(fetches[0]) == {"limit": 1000}  # no cursor key on a first fetch
    assert body_of(fetches[1]) == {"limit": 50, "cursor": "abc"}
    assert body_of(apple.calls("/devices/sync")[0]) == {
        "limit": 1000,
        "cursor": "MTY1NzI2ODE5Ny0y",
    }
    assert len(apple.calls("/account")) == 1


async def test_page_size_follows_a_smaller_advertised_maximum() -> None:
    account = json.loads(fixture_bytes("account_detail.json"))
    account["urls"][2]["limit"] = {"default": 100, "maximum": 200}
    apple = FakeApple()
    apple.route("GET", "/account", account)
    apple.route("POST", "/server/devices", ok(fixture_bytes("fetch_page_last.json")))
    async with apple.client() as client:
        await client.fetch_devices()
    assert body_of(apple.calls("/server/devices")[0])["limit"] == 200


async def test_iter_fetch_pages_while_more_to_follow_and_keeps_the_final_cursor(
    apple: FakeApple,
) -> None:
    apple.once(
        "POST",
        "/server/devices",
        ok(fixture_bytes("fetch_page_first.json")),
        ok(fixture_bytes("fetch_page_last.json")),
    )
    async with apple.client() as client:
        pager = client.iter_fetch_devices(limit=2)
        pages = [page async for page in pager]
    assert [len(p.devices) for p in pages] == [2, 1]
    assert pager.cursor == "MTY1NzI2ODE5Ny0y"
    assert pager.pages == 2 and not pager.stalled
    sent = [body_of(r).get("cursor") for r in apple.calls("/server/devices")]
    assert sent == [None, "MTY1NzI2ODE5Ny0x"]


async def test_iter_sync_starts_from_the_cursor(apple: FakeApple) -> None:
    apple.route("POST", "/devices/sync", ok(fixture_bytes("sync_page.json")))
    async with apple.client() as client:
        pager = client.iter_sync_devices("MTY1NzI2ODE5Ny0y", limit=100)
        pages = [page async for page in pager]
    assert len(pages) == 1
    assert [d.op_type for d in pages[0].devices] == ["added", "modified", "deleted"]
    assert pager.cursor == "MTY1NzI2ODE5Ny0z"


async def test_paging_stops_when_apple_repeats_the_cursor_it_was_given(apple: FakeApple) -> None:
    apple.route(
        "POST",
        "/devices/sync",
        lambda r: ok({"devices": [], "cursor": body_of(r)["cursor"], "more_to_follow": True}),
    )
    async with apple.client() as client:
        pager = client.iter_sync_devices("same", limit=10)
        pages = [page async for page in pager]
    assert len(pages) == 1
    assert pager.stalled


async def test_an_unreadable_page_is_unexpected_not_a_crash(apple: FakeApple) -> None:
    apple.route("POST", "/server/devices", ok({"devices": [{"model": "x"}]}))
    async with apple.client() as client:
        with pytest.raises(AppleError) as caught:
            await client.fetch_devices(limit=10)
    assert caught.value.code == "unexpected"
    assert "DevicePage" in str(caught.value)


async def test_cursor_errors_reach_the_caller_with_their_code(apple: FakeApple) -> None:
    apple.route("POST", "/server/devices", text(400, '"EXHAUSTED_CURSOR"'))
    apple.route("POST", "/devices/sync", text(400, "EXPIRED_CURSOR"))
    async with apple.client() as client:
        with pytest.raises(AppleError) as fetch:
            await client.fetch_devices("old", limit=10)
        with pytest.raises(AppleError) as sync:
            await client.sync_devices("old", limit=10)
    assert fetch.value.code == "cursor_exhausted"
    assert sync.value.code == "cursor_expired"


async def test_device_details_are_chunked_at_1000_and_merged(apple: FakeApple) -> None:
    def details(request: httpx.Request) -> httpx.Response:
        serials = body_of(request)["devices"]
        devices = {s: {"serial_number": s, "response_status": "SUCCESS"} for s in serials[1:]}
        devices[serials[0]] = {"response_status": "NOT_FOUND"}
        return ok({"devices": devices})

    apple.route("POST", "/devices", details)
    serials = [f"SER{i:06d}" for i in range(2500)]
    async with apple.client() as client:
        result = await client.device_details(serials + serials[:10])  # duplicates sent once
    assert [len(body_of(r)["devices"]) for r in apple.calls("/devices")] == [1000, 1000, 500]
    assert len(result.devices) == 2500
    missing = result.devices["SER001000"]
    assert missing.serial_number == "SER001000"
    assert missing.response_status == "NOT_FOUND"


async def test_device_details_parse_the_reference_answer(apple: FakeApple) -> None:
    apple.route("POST", "/devices", ok(fixture_bytes("device_details.json")))
    async with apple.client() as client:
        result = await client.device_details(["C8TJ500QF1MN", "UNKNOWNSERIAL1"])
    assert result.devices["C8TJ500QF1MN"].profile_status == "assigned"
    assert result.devices["UNKNOWNSERIAL1"].response_status == "NOT_FOUND"


async def test_an_empty_serial_list_makes_no_call(apple: FakeApple) -> None:
    async with apple.client() as client:
        assert (await client.device_details([])).devices == {}
        assert (await client.disown_devices([])).devices == {}
        assert (await client.assign_profile("P", [])).devices == {}
        assert (await client.remove_profile([])).devices == {}
    assert apple.requests == []


async def test_disown_posts_the_serials(apple: FakeApple) -> None:
    apple.route("POST", "/devices/disown", ok(fixture_bytes("device_status_response.json")))
    async with apple.client() as client:
        result = await client.disown_devices(["C8TJ500QF1MN", "B7CJ3RQ0FJMN"])
    assert body_of(apple.calls("/devices/disown")[0]) == {
        "devices": ["C8TJ500QF1MN", "B7CJ3RQ0FJMN"]
    }
    assert result.devices["B7CJ3RQ0FJMN"] == "NOT_ACCESSIBLE"


async def test_define_profile_sends_only_the_fields_set(apple: FakeApple) -> None:
    apple.route("POST", "/profile", ok(fixture_bytes("define_profile_response.json")))
    profile = Profile(
        profile_name="Staff iPads",
        url="https://mdm.example.edu/enroll",
        is_supervised=True,
        skip_setup_items=["Siri"],
        devices=["C8TJ500QF1MN"],
        future_key="kept",
    )
    async with apple.client() as client:
        result = await client.define_profile(profile)
        await client.define_profile({"profile_name": "Raw", "url": "https://m.example/e"})
    sent = [body_of(r) for r in apple.calls("/profile")]
    assert sent[0] == {
        "profile_name": "Staff iPads",
        "url": "https://mdm.example.edu/enroll",
        "is_supervised": True,
        "skip_setup_items": ["Siri"],
        "devices": ["C8TJ500QF1MN"],
        "future_key": "kept",
    }
    assert sent[1] == {"profile_name": "Raw", "url": "https://m.example/e"}
    assert result.profile_uuid == "88fc4e378fea4021a94b2d7268fbf767"
    assert result.devices["B7CJ3RQ0FJMN"] == "NOT_ACCESSIBLE"


async def test_profile_field_errors_name_apples_field_code(apple: FakeApple) -> None:
    apple.route("POST", "/profile", text(400, '"CONFIG_URL_INVALID"'))
    async with apple.client() as client:
        with pytest.raises(AppleError) as caught:
            await client.define_profile({"profile_name": "x", "url": "nope"})
    assert caught.value.code == "profile_invalid"
    assert caught.value.field == "CONFIG_URL_INVALID"


async def test_get_profile_asks_by_uuid(apple: FakeApple) -> None:
    apple.route("GET", "/profile", ok(fixture_bytes("profile.json")))
    async with apple.client() as client:
        profile = await client.get_profile("88fc4e378fea4021a94b2d7268fbf767")
    call = apple.calls("/profile")[0]
    assert call.url.params["profile_uuid"] == "88fc4e378fea4021a94b2d7268fbf767"
    assert profile.profile_name == "Staff iPads"
    assert profile.skip_setup_items is not None and "Siri" in profile.skip_setup_items


async def test_an_unknown_profile_is_profile_not_found(apple: FakeApple) -> None:
    apple.route("GET", "/profile", text(404, "NOT_FOUND"))
    apple.route("PUT", "/profile/devices", text(400, '"bad_request_profile_not_found"'))
    async with apple.client() as client:
        with pytest.raises(AppleError) as get:
            await client.get_profile("0000")
        with pytest.raises(AppleError) as assign:
            await client.assign_profile("0000", ["C8TJ500QF1MN"])
    assert get.value.code == "profile_not_found"
    assert assign.value.code == "profile_not_found"


async def test_assign_uses_put_by_default_post_on_request_and_returns_throttled_serials(
    apple: FakeApple,
) -> None:
    apple.route("PUT", "/profile/devices", ok(fixture_bytes("assign_profile_response.json")))
    apple.route("POST", "/profile/devices", ok(fixture_bytes("assign_profile_response.json")))
    async with apple.client() as client:
        result = await client.assign_profile("88fc4e378fea4021a94b2d7268fbf767", ["F9FJ21WNHG5K"])
        await client.assign_profile("88fc4e378fea4021a94b2d7268fbf767", ["X"], method="POST")
        with pytest.raises(ValueError, match="PUT or POST"):
            await client.assign_profile("P", ["X"], method="PATCH")  # type: ignore[arg-type]
    puts = [r for r in apple.calls("/profile/devices") if r.method == "PUT"]
    posts = [r for r in apple.calls("/profile/devices") if r.method == "POST"]
    assert len(puts) == 1 and len(posts) == 1  # THROTTLED is returned, not retried
    assert body_of(puts[0]) == {
        "profile_uuid": "88fc4e378fea4021a94b2d7268fbf767",
        "devices": ["F9FJ21WNHG5K"],
    }
    assert result.devices["F9FJ21WNHG5K"] == "THROTTLED"
    assert result.retry_after_seconds == 300


async def test_assign_merges_chunks_and_keeps_the_longest_retry_after(apple: FakeApple) -> None:
    waits = iter([None, 120, 30])

    def assign(request: httpx.Request) -> httpx.Response:
        body = body_of(request)
        wait = next(waits)
        answer: dict[str, object] = {
            "profile_uuid": body["profile_uuid"],
            "devices": {s: "THROTTLED" if wait else "SUCCESS" for s in body["devices"]},
        }
        if wait:
            answer["retry_after_seconds"] = wait
        return ok(answer)

    apple.route("PUT", "/profile/devices", assign)
    serials = [f"S{i:05d}" for i in range(2001)]
    async with apple.client() as client:
        result = await client.assign_profile("P1", serials)
    assert len(apple.calls("/profile/devices")) == 3
    assert len(result.devices) == 2001
    assert result.devices["S00000"] == "SUCCESS"
    assert result.devices["S02000"] == "THROTTLED"
    assert result.retry_after_seconds == 120
    assert result.profile_uuid == "P1"


async def test_remove_profile_deletes_with_a_body(apple: FakeApple) -> None:
    apple.route("DELETE", "/profile/devices", ok(fixture_bytes("device_status_response.json")))
    async with apple.client() as client:
        result = await client.remove_profile(["C8TJ500QF1MN"])
    call = apple.calls("/profile/devices")[0]
    assert call.method == "DELETE"
    assert body_of(call) == {"devices": ["C8TJ500QF1MN"]}
    assert result.devices["C8TJ500QF1MN"] == "SUCCESS"


async def test_activation_lock_sends_only_what_is_given(apple: FakeApple) -> None:
    apple.route(
        "POST", "/device/activationlock", ok(fixture_bytes("activation_lock_response.json"))
    )
    async with apple.client() as client:
        plain = await client.activation_lock("C8TJ500QF1MN")
        await client.activation_lock("C8TJ500QF1MN", escrow_key="ab" * 32, lost_message="Call IT")
    sent = [body_of(r) for r in apple.calls("/device/activationlock")]
    assert sent == [
        {"device": "C8TJ500QF1MN"},
        {"device": "C8TJ500QF1MN", "escrow_key": "ab" * 32, "lost_message": "Call IT"},
    ]
    assert plain.response_status == "SUCCESS"


async def test_page_timestamps_are_aware_utc(apple: FakeApple) -> None:
    apple.route("POST", "/server/devices", ok(fixture_bytes("fetch_page_first.json")))
    async with apple.client() as client:
        page: DevicePage = await client.fetch_devices(limit=2)
    assert page.fetched_until == datetime(2013, 8, 5, 16, 59, 12, tzinfo=UTC)
    assert page.devices[1].mdm_migration_deadline == datetime(2026, 1, 15, tzinfo=UTC)
