"""``AppleClient``: every ADE endpoint adesync uses, typed, with one retry and error policy.

Usage::

    async with AppleClient(OAuthCredentials(...)) as client:
        account = await client.account()
        pages = client.iter_fetch_devices()
        async for page in pages:
            ...
        cursor = pages.cursor  # the final cursor, for the next sync

Every failure is an :class:`~adesync.apple.errors.AppleError` with a stable ``code``.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import metadata
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from adesync.apple.auth import SESSION_PATH, OAuthCredentials, SessionAuth, SessionCache
from adesync.apple.errors import (
    AppleError,
    AppleThrottled,
    AppleUnavailable,
    Unexpected,
    classify,
    decode_body,
)
from adesync.apple.models import (
    AccountDetail,
    ActivationLockResponse,
    AssignProfileResponse,
    DefineProfileResponse,
    DeviceDetailsResponse,
    DevicePage,
    DeviceStatusResponse,
    Profile,
)
from adesync.apple.retry import RetryPolicy, Sleep, parse_http_date, parse_retry_after

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_PROTOCOL_VERSION",
    "AnswerObserver",
    "AppleClient",
    "DevicePager",
]

# Told of every attempt at a call: the Apple path (``/account``, ``/session``) and ``ok`` or
# the error code it ended with (network failures included, as ``apple_unavailable``).
AnswerObserver = Callable[[str, str], None]

DEFAULT_BASE_URL = "https://mdmenrollment.apple.com"
DEFAULT_PROTOCOL_VERSION = 10
# Apple documents 1000 serials per assignment; the other serial-list endpoints get the same size.
SERIAL_CHUNK = 1000
JSON_CONTENT_TYPE = "application/json;charset=UTF8"

M = TypeVar("M", bound=BaseModel)


def _version() -> str:
    try:
        return metadata.version("adesync")
    except metadata.PackageNotFoundError:
        return "0"


def default_user_agent() -> str:
    """``adesync/<version>``: distinctive, as Apple blocks generic library User-Agents."""
    return f"adesync/{_version()}"


class DevicePager:
    """Pages of fetch or sync, requested while Apple says ``more_to_follow``.

    ``cursor`` is the cursor of the last page received (the one given at the start until then);
    after the loop it is the final cursor to store. ``pages`` counts pages received. If Apple
    says ``more_to_follow`` but hands back the cursor it was given, paging stops rather than loop
    (``stalled`` is then true).
    """

    def __init__(
        self, call: Callable[[str | None], Awaitable[DevicePage]], cursor: str | None
    ) -> None:
        self._call = call
        self.cursor = cursor
        self.pages = 0
        self.stalled = False
        self._done = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> DevicePage:
        if self._done:
            raise StopAsyncIteration
        sent = self.cursor
        page = await self._call(sent)
        self.pages += 1
        self.cursor = page.cursor
        if not page.more_to_follow:
            self._done = True
        elif page.cursor == sent:
            self._done = self.stalled = True
        return page


def default_transport() -> httpx.AsyncHTTPTransport:
    """HTTP with TCP_NODELAY: httpx writes a POST's headers and body separately, and without it
    each POST waits for the server's delayed ACK (about 40 ms a page on Linux)."""
    return httpx.AsyncHTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])


class AppleClient:
    """A client for one server token against one base URL (Apple's, or a simulator's).

    **Parameters:** ``credentials`` (the token's four OAuth values); ``base_url``;
    ``user_agent`` (default ``adesync/<version>``); ``protocol_version`` (sent as
    ``X-Server-Protocol-Version``); ``max_retry_after`` (longest ``Retry-After`` slept through
    before raising ``apple_throttled``); ``max_attempts`` (per call, for network errors, 5xx and
    throttling); ``transport`` (any ``httpx.AsyncBaseTransport``, e.g. an ``ASGITransport``
    around the simulator); ``session_cache`` (share one between clients of the same token);
    ``timeout`` (seconds per request); ``sleep`` (awaitable used for every pause, injectable so
    tests never wait); ``backoff_base``/``backoff_max`` (seconds); ``on_answer`` (an
    :data:`AnswerObserver` told of every attempt, for metrics).

    ``last_apple_date`` is Apple's ``Date`` header on the latest answer and
    ``clock_skew_seconds`` the local clock minus it, for health checks.
    """

    def __init__(
        self,
        credentials: OAuthCredentials,
        *,
        base_url: str = DEFAULT_BASE_URL,
        user_agent: str | None = None,
        protocol_version: int = DEFAULT_PROTOCOL_VERSION,
        max_retry_after: float = 30.0,
        max_attempts: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        session_cache: SessionCache | None = None,
        timeout: float = 30.0,
        sleep: Sleep | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        on_answer: AnswerObserver | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        if user_agent is not None and not user_agent.strip():
            raise ValueError("user_agent must not be empty: Apple rejects requests without one")
        self.base_url = base_url.rstrip("/")
        self.user_agent = user_agent or default_user_agent()
        self.protocol_version = protocol_version
        self.policy = RetryPolicy(
            max_attempts=max_attempts,
            max_retry_after=max_retry_after,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            sleep=sleep or asyncio.sleep,
        )
        self.session_cache = session_cache if session_cache is not None else SessionCache()
        self._on_answer = on_answer
        self._auth = SessionAuth(
            credentials,
            base_url=self.base_url,
            cache=self.session_cache,
            on_login=(lambda: on_answer(SESSION_PATH, "ok")) if on_answer is not None else None,
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=self._auth,
            transport=transport if transport is not None else default_transport(),
            timeout=timeout,
            headers={
                "User-Agent": self.user_agent,
                "X-Server-Protocol-Version": str(protocol_version),
                "Accept": "application/json",
            },
            event_hooks={"response": [self._record_date]},
        )
        self._account: AccountDetail | None = None
        self._account_lock = asyncio.Lock()
        self.last_apple_date: datetime | None = None
        self.clock_skew_seconds: float | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this client opened."""
        await self._http.aclose()

    # -- account ------------------------------------------------------------------------------

    async def account(self) -> AccountDetail:
        """``GET /account``: the MDM server and organisation behind this token (also cached for
        page sizes)."""
        response = await self._call("GET", "/account")
        account = _parse(AccountDetail, response, "/account")
        self._account = account
        return account

    async def page_size(self, uri: str) -> int:
        """The page size for ``uri`` advertised by the (cached) account, capped at 1000."""
        if self._account is None:
            async with self._account_lock:
                if self._account is None:
                    await self.account()
        assert self._account is not None
        return self._account.page_size(uri)

    # -- devices ------------------------------------------------------------------------------

    async def fetch_devices(
        self, cursor: str | None = None, limit: int | None = None
    ) -> DevicePage:
        """``POST /server/devices``: one page of every device assigned to this MDM server."""
        body: dict[str, Any] = {"limit": await self._limit("/server/devices", limit)}
        if cursor:
            body["cursor"] = cursor
        response = await self._call("POST", "/server/devices", body=body)
        return _parse(DevicePage, response, "/server/devices")

    async def sync_devices(self, cursor: str, limit: int | None = None) -> DevicePage:
        """``POST /devices/sync``: one page of changes since ``cursor``."""
        body: dict[str, Any] = {"limit": await self._limit("/devices/sync", limit)}
        if cursor:
            body["cursor"] = cursor
        response = await self._call("POST", "/devices/sync", body=body)
        return _parse(DevicePage, response, "/devices/sync")

    def iter_fetch_devices(
        self, cursor: str | None = None, limit: int | None = None
    ) -> DevicePager:
        """Fetch pages until Apple has no more; the pager's ``cursor`` is then the final one."""
        return DevicePager(lambda sent: self.fetch_devices(sent, limit), cursor)

    def iter_sync_devices(self, cursor: str, limit: int | None = None) -> DevicePager:
        """Sync pages from ``cursor`` until Apple has no more; see :class:`DevicePager`."""
        return DevicePager(lambda sent: self.sync_devices(sent or "", limit), cursor)

    async def device_details(self, serials: Iterable[str]) -> DeviceDetailsResponse:
        """``POST /devices``: Apple's record for each serial (1000 per request, merged)."""
        merged = DeviceDetailsResponse()
        for chunk in _chunks(serials):
            response = await self._call("POST", "/devices", body={"devices": chunk})
            merged.devices.update(_parse(DeviceDetailsResponse, response, "/devices").devices)
        return merged

    async def disown_devices(self, serials: Iterable[str]) -> DeviceStatusResponse:
        """``POST /devices/disown`` (permanent after a short grace period): serial → status."""
        merged = DeviceStatusResponse()
        for chunk in _chunks(serials):
            response = await self._call("POST", "/devices/disown", body={"devices": chunk})
            merged.devices.update(_parse(DeviceStatusResponse, response, "/devices/disown").devices)
        return merged

    async def activation_lock(
        self, serial: str, escrow_key: str | None = None, lost_message: str | None = None
    ) -> ActivationLockResponse:
        """``POST /device/activationlock`` for one device."""
        body: dict[str, Any] = {"device": serial}
        if escrow_key is not None:
            body["escrow_key"] = escrow_key
        if lost_message is not None:
            body["lost_message"] = lost_message
        response = await self._call("POST", "/device/activationlock", body=body)
        return _parse(ActivationLockResponse, response, "/device/activationlock")

    # -- profiles -----------------------------------------------------------------------------

    async def define_profile(self, profile: Profile | Mapping[str, Any]) -> DefineProfileResponse:
        """``POST /profile``: a new profile (always a new UUID).

        Never repeated after Apple may have acted on it (a 5xx or a dropped connection could
        mean the profile exists): only a refused login, a 429 or a connection that never opened
        is retried.
        """
        if isinstance(profile, Profile):
            body = profile.model_dump(mode="json", exclude_none=True)
        else:
            body = dict(profile)
        response = await self._call("POST", "/profile", body=body, repeatable=False)
        return _parse(DefineProfileResponse, response, "/profile")

    async def get_profile(self, profile_uuid: str) -> Profile:
        """``GET /profile?profile_uuid=...``."""
        response = await self._call("GET", "/profile", params={"profile_uuid": profile_uuid})
        return _parse(Profile, response, "/profile")

    async def assign_profile(
        self,
        profile_uuid: str,
        serials: Iterable[str],
        method: Literal["PUT", "POST"] = "PUT",
    ) -> AssignProfileResponse:
        """Assign a profile to serials (1000 per request, results merged).

        ``PUT`` by default: Apple accepts both, its simulator only ``PUT``. Serials Apple answers
        ``THROTTLED`` come back as such with ``retry_after_seconds`` (the longest of any chunk);
        they are not retried here.
        """
        if method not in ("PUT", "POST"):
            raise ValueError("method must be PUT or POST")
        merged = AssignProfileResponse(profile_uuid=profile_uuid)
        for chunk in _chunks(serials):
            response = await self._call(
                method,
                "/profile/devices",
                body={"profile_uuid": profile_uuid, "devices": chunk},
            )
            part = _parse(AssignProfileResponse, response, "/profile/devices")
            merged.devices.update(part.devices)
            if part.retry_after_seconds is not None:
                merged.retry_after_seconds = max(
                    part.retry_after_seconds, merged.retry_after_seconds or 0
                )
        return merged

    async def remove_profile(self, serials: Iterable[str]) -> DeviceStatusResponse:
        """``DELETE /profile/devices``: clear the profile from serials (1000 per request)."""
        merged = DeviceStatusResponse()
        for chunk in _chunks(serials):
            response = await self._call("DELETE", "/profile/devices", body={"devices": chunk})
            merged.devices.update(
                _parse(DeviceStatusResponse, response, "/profile/devices").devices
            )
        return merged

    # -- transport ----------------------------------------------------------------------------

    async def _limit(self, uri: str, limit: int | None) -> int:
        if limit is None:
            return await self.page_size(uri)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        return limit

    async def _call(
        self,
        method: str,
        endpoint: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        repeatable: bool = True,
    ) -> httpx.Response:
        """Send one call with the retry rules; return the 2xx answer or raise ``AppleError``."""
        content = None
        headers = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers = {"Content-Type": JSON_CONTENT_TYPE}
        attempt = 0
        while True:
            attempt += 1
            request = self._http.build_request(
                method, endpoint, content=content, params=params, headers=headers
            )
            reached_apple = True
            try:
                response = await self._http.send(request)
            except AppleError as error:  # raised by the session flow
                failure = error
                reached_apple = error.endpoint != SESSION_PATH
            except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
                raise Unexpected(endpoint=endpoint, detail=_describe(exc)) from exc
            except httpx.TransportError as exc:
                failure = AppleUnavailable(endpoint=endpoint, detail=_describe(exc))
                reached_apple = not isinstance(
                    exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                )
            else:
                if response.is_success:
                    if self._on_answer is not None:
                        self._on_answer(endpoint, "ok")
                    return response
                failure = self._classify(response, endpoint)
            if self._on_answer is not None:
                self._on_answer(failure.endpoint or endpoint, failure.code)
            delay = self._retry_delay(failure, attempt, repeatable or not reached_apple)
            if delay is None:
                raise failure
            await self.policy.sleep(delay)

    def _retry_delay(self, failure: AppleError, attempt: int, repeatable: bool) -> float | None:
        """Seconds to wait before trying again, or ``None`` to give up and raise ``failure``."""
        if attempt >= self.policy.max_attempts:
            return None
        if isinstance(failure, AppleThrottled):
            # A 429 says Apple did not act on the call, so even a profile definition may repeat.
            if not repeatable and failure.status != 429:
                return None
            if failure.retry_at is None:
                return self.policy.backoff(attempt)
            wait = (failure.retry_at - datetime.now(UTC)).total_seconds()
            if wait > self.policy.max_retry_after:
                return None
            return max(0.0, wait)
        if isinstance(failure, AppleUnavailable) and repeatable:
            return self.policy.backoff(attempt)
        return None

    def _classify(self, response: httpx.Response, endpoint: str) -> AppleError:
        now = datetime.now(UTC)
        apple_date = parse_http_date(response.headers.get("Date"))
        return classify(
            endpoint=endpoint,
            status=response.status_code,
            body=decode_body(response.content),
            retry_at=parse_retry_after(
                response.headers.get("Retry-After"), now=now, apple_date=apple_date
            ),
        )

    async def _record_date(self, response: httpx.Response) -> None:
        apple_date = parse_http_date(response.headers.get("Date"))
        if apple_date is not None:
            self.last_apple_date = apple_date
            self.clock_skew_seconds = (datetime.now(UTC) - apple_date).total_seconds()


def _parse(model: type[M], response: httpx.Response, endpoint: str) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise Unexpected(
            endpoint=endpoint,
            status=response.status_code,
            body=decode_body(response.content),
            detail=f"the answer is not a valid {model.__name__} ({exc.error_count()} problems)",
        ) from None


def _chunks(serials: Iterable[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(serials))
    for start in range(0, len(unique), SERIAL_CHUNK):
        yield unique[start : start + SERIAL_CHUNK]


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
