"""Apple's session login as an ``httpx.Auth`` flow.

A call carries ``X-ADM-Auth-Session``. Without a session (or when Apple refuses the one sent: 401,
or 403 whose body says ``FORBIDDEN``, as after a simulator restart) the flow signs
``GET /session`` with OAuth 1.0a HMAC-SHA1, stores the new session and replays the call once —
never more. ``T_C_NOT_SIGNED`` and ``ACCESS_DENIED`` 403s are never answered with a new login:
a new session cannot fix them. A session Apple rotates through a response header is adopted.
Sessions live in a :class:`SessionCache` shared by every client of a token, and one login per
token runs at a time, so fifty concurrent calls log in once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER
from oauthlib.oauth1 import Client as OAuth1Client

from adesync.apple.errors import AppleError, Unexpected, classify, decode_body
from adesync.apple.retry import parse_http_date, parse_retry_after

__all__ = ["OAuthCredentials", "SessionAuth", "SessionCache", "SessionKey"]

SESSION_HEADER = "X-ADM-Auth-Session"
SESSION_PATH = "/session"
# Apple's simulator answers /session only with exactly this Content-Type.
SESSION_CONTENT_TYPE = "application/json;charset=UTF8"
_COPIED_HEADERS = ("User-Agent", "X-Server-Protocol-Version", "Accept")

SessionKey = tuple[str, str, str]


@dataclass(frozen=True)
class OAuthCredentials:
    """The four OAuth 1.0a values from a server token's ``.p7m``."""

    consumer_key: str
    consumer_secret: str
    access_token: str
    access_secret: str = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("consumer_key", "consumer_secret", "access_token", "access_secret"):
            if not getattr(self, name):
                raise ValueError(f"OAuth credentials need a non-empty {name}")

    def __repr__(self) -> str:  # secrets never reach logs
        return f"OAuthCredentials(consumer_key={self.consumer_key!r}, access_token=...)"


class SessionCache:
    """Apple session tokens by (base URL, consumer key, access token), shared between clients.

    One lock per token and event loop serialises logins; reads need no lock. Safe to share by
    every client of one process; it holds only session tokens, never OAuth secrets.
    """

    def __init__(self) -> None:
        self._sessions: dict[SessionKey, str] = {}
        self._locks: dict[SessionKey, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}
        self.logins = 0  # how many logins succeeded through this cache (for metrics and tests)

    def get(self, key: SessionKey) -> str | None:
        """The current session token for ``key``, if any."""
        return self._sessions.get(key)

    def set(self, key: SessionKey, session: str) -> None:
        self._sessions[key] = session

    def discard(self, key: SessionKey, session: str | None = None) -> None:
        """Forget the session for ``key`` (only if it is still ``session``, when given)."""
        if session is None or self._sessions.get(key) == session:
            self._sessions.pop(key, None)

    def lock(self, key: SessionKey) -> asyncio.Lock:
        """The login lock for ``key`` on the running event loop."""
        loop = asyncio.get_running_loop()
        held = self._locks.get(key)
        if held is None or held[0] is not loop:
            held = (loop, asyncio.Lock())
            self._locks[key] = held
        return held[1]


class SessionAuth(httpx.Auth):
    """The ``httpx.Auth`` that logs in to Apple and keeps the session fresh (see module doc)."""

    def __init__(
        self,
        credentials: OAuthCredentials,
        *,
        base_url: str,
        cache: SessionCache,
        on_login: Callable[[], None] | None = None,
    ) -> None:
        self._credentials = credentials
        self._on_login = on_login
        self._session_url = base_url.rstrip("/") + SESSION_PATH
        self._base_path = httpx.URL(base_url).path.rstrip("/")
        self._cache = cache
        self.key: SessionKey = (
            base_url.rstrip("/"),
            credentials.consumer_key,
            credentials.access_token,
        )

    def sync_auth_flow(self, request: httpx.Request) -> Any:
        raise RuntimeError("adesync.apple is asynchronous; use httpx.AsyncClient")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        session = self._cache.get(self.key)
        if session is None:
            async with self._cache.lock(self.key):
                session = self._cache.get(self.key)
                if session is None:
                    response = yield self._login_request(request)
                    session = await self._adopt_login(response)

        request.headers[SESSION_HEADER] = session
        response = yield request
        self._adopt_rotation(response)
        if not await _session_refused(response):
            return

        async with self._cache.lock(self.key):
            current = self._cache.get(self.key)
            # Another call may have logged in while this one waited; reuse its session.
            if current is None or current == session:
                self._cache.discard(self.key, current)
                response = yield self._login_request(request)
                current = await self._adopt_login(response)

        request.headers[SESSION_HEADER] = current
        response = yield request
        self._adopt_rotation(response)
        if await _session_refused(response):
            # Apple refused a session it had just issued: never loop, say why.
            raise await _error_after_relogin(self.endpoint(request), response)

    def endpoint(self, request: httpx.Request) -> str:
        """The Apple path ``request`` calls (``/account``), without any base-URL prefix."""
        path = request.url.path
        if self._base_path and path.startswith(self._base_path):
            return path[len(self._base_path) :] or "/"
        return path

    def _login_request(self, trigger: httpx.Request) -> httpx.Request:
        headers = {
            name: trigger.headers[name] for name in _COPIED_HEADERS if name in trigger.headers
        }
        headers["Content-Type"] = SESSION_CONTENT_TYPE
        signer = OAuth1Client(
            self._credentials.consumer_key,
            client_secret=self._credentials.consumer_secret,
            resource_owner_key=self._credentials.access_token,
            resource_owner_secret=self._credentials.access_secret,
            signature_method=SIGNATURE_HMAC_SHA1,
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
            realm="ADM",
        )
        _, signed, _ = signer.sign(self._session_url, http_method="GET")
        headers["Authorization"] = signed["Authorization"]
        request = httpx.Request("GET", self._session_url, headers=headers)
        request.extensions = dict(trigger.extensions)
        return request

    async def _adopt_login(self, response: httpx.Response) -> str:
        await response.aread()
        if response.status_code != 200:
            raise _session_error(response)
        try:
            document = json.loads(response.content)
        except ValueError:
            document = None
        session = document.get("auth_session_token") if isinstance(document, dict) else None
        if not isinstance(session, str) or not session:
            raise Unexpected(
                endpoint=SESSION_PATH,
                status=response.status_code,
                body=decode_body(response.content),
                detail="no auth_session_token in Apple's answer",
            )
        self._cache.set(self.key, session)
        self._cache.logins += 1
        if self._on_login is not None:
            self._on_login()
        return session

    def _adopt_rotation(self, response: httpx.Response) -> None:
        rotated = response.headers.get(SESSION_HEADER)
        if rotated and rotated != _sent(response):
            self._cache.set(self.key, rotated)


def _sent(response: httpx.Response) -> str | None:
    sent: str | None = response.request.headers.get(SESSION_HEADER)
    return sent


async def _session_refused(response: httpx.Response) -> bool:
    """True for the answers a new session can fix: 401, and 403 whose body says FORBIDDEN."""
    if response.status_code == 401:
        return True
    if response.status_code != 403:
        return False
    await response.aread()
    text = response.content[:4096].upper()
    return (
        b"FORBIDDEN" in text
        and b"T_C_NOT_SIGNED" not in text
        and b"ACCESS_DENIED" not in text
        and b"TOKEN_REJECTED" not in text
        and b"SIGNATURE_INVALID" not in text
    )


def _session_error(response: httpx.Response) -> AppleError:
    now = datetime.now(UTC)
    apple_date = parse_http_date(response.headers.get("Date"))
    skew = (now - apple_date).total_seconds() if apple_date is not None else None
    return classify(
        endpoint=SESSION_PATH,
        status=response.status_code,
        body=decode_body(response.content),
        retry_at=parse_retry_after(
            response.headers.get("Retry-After"), now=now, apple_date=apple_date
        ),
        clock_skew_seconds=skew,
    )


async def _error_after_relogin(endpoint: str, response: httpx.Response) -> AppleError:
    """The error for a refusal of the replayed call (its body read first: the answer of a real
    connection arrives as a stream)."""
    await response.aread()
    return classify(
        endpoint=endpoint,
        status=response.status_code,
        body=decode_body(response.content),
        after_relogin=True,
    )
