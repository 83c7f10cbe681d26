"""adesync.apple against the simulator of Apple's service: in-process (ASGI) and over loopback HTTP.

The simulator shares no code with the client, so these tests catch protocol mistakes the
scripted ``FakeApple`` cannot: real OAuth verification, real cursors, real session handling.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from adesync.apple import AppleClient, AppleError, OAuthCredentials, Profile, SessionCache
from adesync.simulator import Simulator, create_app, run_in_thread

DEVICES = 2500
ANY_HOST = "http://127.0.0.1:8080"  # ASGITransport never opens a socket


class Recording(httpx.AsyncBaseTransport):
    """Passes requests to the simulator and remembers which paths were called."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    def count(self, path: str) -> int:
        return self.paths.count(path)


@dataclass
class World:
    sim: Simulator
    server_uuid: str
    transport: Recording
    sleeps: list[float]

    @property
    def credentials(self) -> OAuthCredentials:
        values = self.sim.credentials(self.server_uuid)
        return OAuthCredentials(
            consumer_key=values["consumer_key"],
            consumer_secret=values["consumer_secret"],
            access_token=values["access_token"],
            access_secret=values["access_secret"],
        )

    def client(self, **options: object) -> AppleClient:
        async def record(seconds: float) -> None:
            self.sleeps.append(seconds)

        return AppleClient(
            self.credentials,
            base_url=ANY_HOST,
            transport=self.transport,
            sleep=record,
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture
def world() -> World:
    sim = Simulator(devices=DEVICES, seed=7)
    download = sim.create_server("Acme MDM", admin_id="ade.admin@acme.example")
    transport = Recording(httpx.ASGITransport(app=create_app(sim)))
    return World(sim=sim, server_uuid=download.server_uuid, transport=transport, sleeps=[])


@pytest.fixture
async def client(world: World) -> AsyncIterator[AppleClient]:
    async with world.client() as apple:
        yield apple


# -- identity and paging ---------------------------------------------------------------------


async def test_account_names_the_server_and_advertises_page_limits(
    world: World, client: AppleClient
) -> None:
    account = await client.account()
    assert account.server_uuid == world.server_uuid
    assert account.server_name == "Acme MDM"
    assert account.admin_id == "ade.admin@acme.example"
    assert account.org_name == "Example Organisation"
    assert account.page_size("/server/devices") == 1000


async def test_a_full_fetch_then_sync_follows_the_cursor(world: World, client: AppleClient) -> None:
    pager = client.iter_fetch_devices()
    serials: list[str] = []
    async for page in pager:
        serials.extend(d.serial_number for d in page.devices)
    assert pager.pages == 3
    assert len(serials) == len(set(serials)) == DEVICES
    cursor = pager.cursor
    assert cursor is not None

    with pytest.raises(AppleError) as exhausted:
        await client.fetch_devices(cursor)
    assert exhausted.value.code == "cursor_exhausted"

    added = world.sim.add_devices(world.server_uuid, count=3)
    syncer = client.iter_sync_devices(cursor)
    changes = [d async for page in syncer for d in page.devices]
    assert [(d.serial_number, d.op_type) for d in changes] == [(s, "added") for s in added]
    assert all(d.op_date is not None and d.op_date.tzinfo is not None for d in changes)
    assert syncer.cursor != cursor
    assert world.transport.count("/account") == 1  # page size asked once


async def test_cursor_errors_from_the_simulator(world: World, client: AppleClient) -> None:
    page = await client.fetch_devices(limit=10)
    with pytest.raises(AppleError) as required:
        await client.sync_devices("")
    assert required.value.code == "cursor_required"
    with pytest.raises(AppleError) as invalid:
        await client.sync_devices("bm90LWEtY3Vyc29y")
    assert invalid.value.code == "cursor_invalid"
    world.sim.expire_cursors(world.server_uuid)
    with pytest.raises(AppleError) as expired:
        await client.sync_devices(page.cursor)
    assert expired.value.code == "cursor_expired"


# -- sessions --------------------------------------------------------------------------------


async def test_a_simulator_restart_costs_one_new_login(world: World, client: AppleClient) -> None:
    await client.account()
    world.sim.expire_sessions()  # old sessions now answer 403 "FORBIDDEN"
    await client.account()
    assert world.transport.count("/session") == 2
    assert world.transport.count("/account") == 3


async def test_rotated_sessions_are_adopted(world: World) -> None:
    world.sim.configure(session_rotate_every=1, session_rotation_retires_old=True)
    async with world.client() as client:
        for _ in range(5):
            await client.account()
    assert world.transport.count("/session") == 1
    assert world.transport.count("/account") == 5


async def test_fifty_concurrent_calls_log_in_once(world: World, client: AppleClient) -> None:
    accounts = await asyncio.gather(*(client.account() for _ in range(50)))
    assert {a.server_uuid for a in accounts} == {world.server_uuid}
    assert world.transport.count("/session") == 1


async def test_clients_sharing_a_cache_share_the_login(world: World) -> None:
    cache = SessionCache()
    async with world.client(session_cache=cache) as a, world.client(session_cache=cache) as b:
        await asyncio.gather(a.account(), b.account(), a.account(), b.account())
    assert world.transport.count("/session") == 1


# -- token-level refusals --------------------------------------------------------------------


async def test_unaccepted_terms_are_terms_not_accepted_until_accepted(
    world: World, client: AppleClient
) -> None:
    org_id = world.sim.server(world.server_uuid).org.org_id
    world.sim.set_terms_pending(org_id)
    with pytest.raises(AppleError) as caught:
        await client.account()
    assert caught.value.code == "terms_not_accepted"
    world.sim.set_terms_pending(org_id, False)
    await client.account()


async def test_terms_published_mid_session_are_not_answered_with_a_login(
    world: World, client: AppleClient
) -> None:
    await client.account()
    world.sim.set_terms_pending(world.sim.server(world.server_uuid).org.org_id)
    with pytest.raises(AppleError) as caught:
        await client.account()
    assert caught.value.code == "terms_not_accepted"
    assert caught.value.endpoint == "/account"
    assert world.transport.count("/session") == 1


async def test_a_revoked_token_is_token_rejected(world: World, client: AppleClient) -> None:
    await client.account()
    world.sim.revoke_token(world.server_uuid)
    with pytest.raises(AppleError) as mid_session:
        await client.account()
    assert mid_session.value.code == "token_rejected"
    async with world.client() as fresh:  # same revoked credentials, new login
        with pytest.raises(AppleError) as at_login:
            await fresh.account()
    assert at_login.value.code == "token_rejected"
    assert at_login.value.endpoint == "/session"


async def test_a_superseded_token_is_token_rejected(world: World) -> None:
    old = world.credentials
    world.sim.download_token(world.server_uuid)
    async with AppleClient(old, base_url=ANY_HOST, transport=world.transport) as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == "token_rejected"


async def test_a_deleted_server_is_access_denied(world: World, client: AppleClient) -> None:
    await client.account()
    world.sim.delete_server(world.server_uuid)
    with pytest.raises(AppleError) as caught:
        await client.account()
    assert caught.value.code == "access_denied"


async def test_a_clock_far_from_apples_is_clock_skew(world: World, client: AppleClient) -> None:
    world.sim.configure(clock_offset_seconds=900)
    with pytest.raises(AppleError) as caught:
        await client.account()
    assert caught.value.code == "clock_skew"
    assert client.clock_skew_seconds is not None and client.clock_skew_seconds < -800


async def test_a_blocked_user_agent_is_user_agent_rejected(world: World) -> None:
    async with world.client(user_agent="nanodep-godep/0") as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == "user_agent_rejected"


# -- throttling and outages ------------------------------------------------------------------


async def test_a_short_429_is_waited_out(world: World, client: AppleClient) -> None:
    world.sim.set_faults(
        scripts={"account": [{"count": 2, "response": "too_many_requests", "retry_after": 2}]}
    )
    account = await client.account()
    assert account.server_uuid == world.server_uuid
    assert len(world.sleeps) == 2 and all(1.0 <= s <= 2.0 for s in world.sleeps)


async def test_a_long_throttle_raises_apple_throttled(world: World, client: AppleClient) -> None:
    world.sim.set_faults(throttle={"status": 503, "retry_after": 600})
    with pytest.raises(AppleError) as caught:
        await client.account()
    assert caught.value.code == "apple_throttled"
    assert caught.value.retry_at is not None
    assert world.sleeps == []


@pytest.mark.parametrize("mode", ["500", "503", "drop"])
async def test_an_outage_is_retried_then_apple_unavailable(
    world: World, client: AppleClient, mode: str
) -> None:
    world.sim.set_faults(outage={"mode": mode})
    with pytest.raises(AppleError) as caught:
        await client.account()
    assert caught.value.code == "apple_unavailable"
    assert world.transport.count("/session") == 4
    assert len(world.sleeps) == 3


async def test_a_brief_outage_is_survived(world: World, client: AppleClient) -> None:
    world.sim.set_faults(
        scripts={"fetch_devices": [{"count": 2, "response": "internal_server_error"}]}
    )
    page = await client.fetch_devices(limit=5)
    assert len(page.devices) == 5
    assert len(world.sleeps) == 2


# -- profiles and device operations ----------------------------------------------------------

PROFILE = Profile(
    profile_name="Staff Macs",
    url="https://mdm.acme.example/enroll",
    is_supervised=True,
    is_mdm_removable=False,
    skip_setup_items=["Siri", "Location"],
    language="en",
    region="US",
)


async def test_define_get_assign_and_remove_a_profile(world: World, client: AppleClient) -> None:
    serials = [d["serial_number"] for d in world.sim.devices(world.server_uuid, 0, 3)]
    defined = await client.define_profile(PROFILE)
    fetched = await client.get_profile(defined.profile_uuid)
    assert fetched.profile_name == "Staff Macs"
    assert fetched.profile_uuid == defined.profile_uuid
    assert fetched.skip_setup_items == ["Siri", "Location"]

    assigned = await client.assign_profile(defined.profile_uuid, [*serials, "NOTMINE0001"])
    assert assigned.devices == {
        **dict.fromkeys(serials, "SUCCESS"),
        "NOTMINE0001": "NOT_ACCESSIBLE",
    }
    details = await client.device_details(serials)
    assert {d.profile_uuid for d in details.devices.values()} == {defined.profile_uuid}
    assert {d.profile_status for d in details.devices.values()} == {"assigned"}

    posted = await client.assign_profile(defined.profile_uuid, serials[:1], method="POST")
    assert posted.devices == {serials[0]: "SUCCESS"}

    removed = await client.remove_profile(serials)
    assert set(removed.devices.values()) == {"SUCCESS"}
    after = await client.device_details(serials[:1])
    assert after.devices[serials[0]].profile_status == "removed"


async def test_throttled_serials_come_back_with_retry_after_and_are_not_retried(
    world: World, client: AppleClient
) -> None:
    serials = [d["serial_number"] for d in world.sim.devices(world.server_uuid, 0, 2)]
    world.sim.throttle_serials(world.server_uuid, serials[:1], 300)
    defined = await client.define_profile(PROFILE)
    result = await client.assign_profile(defined.profile_uuid, serials)
    assert result.devices == {serials[0]: "THROTTLED", serials[1]: "SUCCESS"}
    assert result.retry_after_seconds is not None and 295 <= result.retry_after_seconds <= 300
    assert world.transport.count("/profile/devices") == 1
    assert world.sleeps == []


async def test_apple_rejects_profile_fields_with_their_code(client: AppleClient) -> None:
    with pytest.raises(AppleError) as long_name:
        await client.define_profile({"profile_name": "x" * 126, "url": "https://m.example/e"})
    assert long_name.value.code == "profile_invalid"
    assert long_name.value.field == "CONFIG_NAME_INVALID"
    with pytest.raises(AppleError) as no_url:
        await client.define_profile({"profile_name": "x"})
    assert no_url.value.field == "CONFIG_URL_REQUIRED"
    with pytest.raises(AppleError) as flags:
        await client.define_profile(
            {"profile_name": "x", "url": "https://m.example/e", "is_mdm_removable": False}
        )
    assert flags.value.field == "FLAGS_INVALID"


async def test_unknown_profiles_are_profile_not_found(client: AppleClient) -> None:
    with pytest.raises(AppleError) as get:
        await client.get_profile("0123456789ABCDEF0123456789ABCDEF")
    assert get.value.code == "profile_not_found"
    with pytest.raises(AppleError) as assign:
        await client.assign_profile("0123456789ABCDEF0123456789ABCDEF", ["X"])
    assert assign.value.code == "profile_not_found"


async def test_a_failed_profile_definition_is_not_repeated(
    world: World, client: AppleClient
) -> None:
    world.sim.set_faults(
        scripts={"define_profile": [{"count": 1, "response": "internal_server_error"}]}
    )
    with pytest.raises(AppleError) as caught:
        await client.define_profile(PROFILE)
    assert caught.value.code == "apple_unavailable"
    assert world.transport.count("/profile") == 1
    assert world.sim.server(world.server_uuid).profiles == {}


async def test_disown_and_activation_lock(world: World, client: AppleClient) -> None:
    serials = [d["serial_number"] for d in world.sim.devices(world.server_uuid, 0, 2)]
    locked = await client.activation_lock(serials[0], escrow_key="a" * 64, lost_message="Call IT")
    assert locked.serial_number == serials[0]
    assert locked.response_status in {"SUCCESS", "DEVICE_NOT_SUPPORTED"}
    disowned = await client.disown_devices([serials[1], "NOTMINE0001"])
    assert disowned.devices == {serials[1]: "SUCCESS", "NOTMINE0001": "NOT_ACCESSIBLE"}
    details = await client.device_details([serials[1]])
    assert details.devices[serials[1]].response_status == "NOT_FOUND"


# -- over real loopback HTTP -----------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[Simulator, str, str]]:
    sim = Simulator(devices=1200, seed=11)
    download = sim.create_server("Loopback MDM")
    base_url, stop = run_in_thread(sim)
    try:
        yield sim, download.server_uuid, base_url
    finally:
        stop()


def _creds(sim: Simulator, server_uuid: str) -> OAuthCredentials:
    values = sim.credentials(server_uuid)
    return OAuthCredentials(
        consumer_key=values["consumer_key"],
        consumer_secret=values["consumer_secret"],
        access_token=values["access_token"],
        access_secret=values["access_secret"],
    )


async def test_over_loopback_http_a_full_fetch_and_concurrent_calls(
    served: tuple[Simulator, str, str],
) -> None:
    sim, server_uuid, base_url = served
    cache = SessionCache()
    async with AppleClient(_creds(sim, server_uuid), base_url=base_url, session_cache=cache) as c:
        accounts = await asyncio.gather(*(c.account() for _ in range(50)))
        assert {a.server_uuid for a in accounts} == {server_uuid}
        pager = c.iter_fetch_devices()
        count = sum([len(page.devices) async for page in pager])
        assert c.last_apple_date is not None
    assert count == 1200
    assert pager.pages == 2
    assert cache.logins == 1


async def test_over_loopback_http_a_dropped_connection_is_apple_unavailable(
    served: tuple[Simulator, str, str],
) -> None:
    sim, server_uuid, base_url = served
    sim.set_faults(outage={"mode": "drop", "endpoints": ["account"]})
    pauses: list[float] = []

    async def record(seconds: float) -> None:
        pauses.append(seconds)

    async with AppleClient(
        _creds(sim, server_uuid), base_url=base_url, sleep=record, max_attempts=2
    ) as client:
        with pytest.raises(AppleError) as caught:
            await client.account()
    assert caught.value.code == "apple_unavailable"
    assert caught.value.status is None
    assert len(pauses) == 1
