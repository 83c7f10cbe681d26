"""A small scripted stand-in for Apple's ADE service, served through ``httpx.MockTransport``.

It checks what the client must get right (OAuth 1.0a signature computed here independently of
oauthlib, session header, content types) and lets a test queue exact answers per endpoint for
the edge cases the simulator cannot be made to produce on demand.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx

from adesync.apple import AppleClient, OAuthCredentials

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "apple"
BASE_URL = "http://127.0.0.1:8080"
CREDS = OAuthCredentials(
    consumer_key="CK_48dd68d198350f51258e885ce9a5c37ab7f98543c4a697323d75682a6c10a32501cb247e3db08105db868f73f2c972bdb6ae77112aea803b9219eb52689d42e6",
    consumer_secret="CS_34c7b2b531a600d99a0e4edcf4a78ded79b86ef318118c2f5bcfee1b011108c32d5302df801adbe29d446eb78f02b13144e323eb9aad51c79f01e50cb45c3a68",
    access_token="AT_927696831c59ba510cfe4ec1a69e5267c19881257d4bca2906a99d0785b785a6f6fdeb09774954fdd5e2d0ad952e3af52c6d8d2f21c924ba0caf4a031c158b89",
    access_secret="AS_c31afd7a09691d83548489336e8ff1cb11b82b6bca13f793344496a556b1f4972eaff4dde6deb5ac9cf076fdfa97ec97699c34d515947b9cf9ed31c99dded6ba",
)

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def text(status: int, body: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """A plain-text error answer the way Apple sends them."""
    return httpx.Response(
        status,
        content=body.encode(),
        headers={"Content-Type": "text/plain;Charset=UTF8", **(headers or {})},
    )


def ok(document: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = document if isinstance(document, bytes) else json.dumps(document).encode()
    return httpx.Response(
        200,
        content=content,
        headers={"Content-Type": "application/json;charset=UTF8", **(headers or {})},
    )


def _enc(value: str) -> str:
    return quote(value, safe="~-._")


def oauth_signature_valid(request: httpx.Request, creds: OAuthCredentials) -> bool:
    """Check an OAuth 1.0a HMAC-SHA1 Authorization header by RFC 5849, written out by hand."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("OAuth "):
        return False
    params = {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', header)}
    if params.get("realm") != "ADM" or params.get("oauth_signature_method") != "HMAC-SHA1":
        return False
    if params.get("oauth_consumer_key") != creds.consumer_key:
        return False
    if params.get("oauth_token") != creds.access_token:
        return False
    signature = params.pop("oauth_signature", "")
    params.pop("realm")
    pairs = sorted((_enc(k), _enc(v)) for k, v in params.items())
    pairs += sorted((_enc(k), _enc(v)) for k, v in request.url.params.multi_items())
    normalized = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    base_uri = f"{request.url.scheme}://{request.url.netloc.decode()}{request.url.path}"
    base = "&".join([request.method, _enc(base_uri), _enc(normalized)])
    key = f"{_enc(creds.consumer_secret)}&{_enc(creds.access_secret)}"
    expected = base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest())
    return hmac.compare_digest(expected.decode(), signature)


@dataclass
class FakeApple:
    """Scripted Apple: a session per valid login, ``routes`` answer, ``queue`` holds one-shots."""

    creds: OAuthCredentials = CREDS
    base_path: str = ""
    clock_offset: timedelta = timedelta(0)
    rotate_every: int = 0  # hand out a new session header every N answered calls
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    queue: dict[tuple[str, str], list[Handler | httpx.Response]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    logins: int = 0
    _served: int = 0

    def route(self, method: str, path: str, answer: Handler | httpx.Response | Any) -> None:
        if isinstance(answer, httpx.Response):
            self.routes[(method, path)] = _replay(answer)
        elif callable(answer):
            self.routes[(method, path)] = answer
        else:
            document = answer
            self.routes[(method, path)] = lambda _request: ok(document)

    def once(self, method: str, path: str, *answers: httpx.Response | Handler) -> None:
        self.queue.setdefault((method, path), []).extend(answers)

    def restart(self) -> None:
        """Forget every session, as Apple's simulator does when it restarts."""
        self.sessions.clear()

    def calls(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == self.base_path + path]

    async def handler(self, request: httpx.Request) -> httpx.Response:
        # A snapshot: the client replays the same Request object with new headers.
        self.requests.append(
            httpx.Request(
                request.method, request.url, headers=request.headers.copy(), content=request.content
            )
        )
        await asyncio.sleep(0)  # let concurrent calls interleave as they would on a network
        path = request.url.path.removeprefix(self.base_path)
        response = await self._answer(request, path)
        response.headers.setdefault(
            "Date", format_datetime(datetime.now(UTC) + self.clock_offset, usegmt=True)
        )
        return response

    async def _answer(self, request: httpx.Request, path: str) -> httpx.Response:
        queued = self.queue.get((request.method, path))
        if queued:
            answer = queued.pop(0)
            if isinstance(answer, httpx.Response):
                return _copy(answer)
            result = answer(request)
            return await result if isinstance(result, Awaitable) else result
        if path == "/session":
            return self._login(request)
        session = request.headers.get("X-ADM-Auth-Session")
        if session is None:
            return text(401, "UNAUTHORIZED", {"WWW-Authenticate": "ADM-Auth-Token"})
        if session not in self.sessions:
            return text(403, '"FORBIDDEN"')
        handler = self.routes.get((request.method, path))
        if handler is None:
            return text(404, "NOT_FOUND")
        result = handler(request)
        response = await result if isinstance(result, Awaitable) else result
        self._served += 1
        if self.rotate_every and self._served % self.rotate_every == 0:
            rotated = f"rotated-{self._served}"
            self.sessions.add(rotated)
            response.headers["X-ADM-Auth-Session"] = rotated
        return response

    def _login(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Content-Type") != "application/json;charset=UTF8":
            return text(400, "BAD_REQUEST")
        if not oauth_signature_valid(request, self.creds):
            return text(401, "UNAUTHORIZED")
        self.logins += 1
        session = f"session-{self.logins}"
        self.sessions.add(session)
        return ok({"auth_session_token": session})

    def client(self, **options: Any) -> AppleClient:
        sleeps: list[float] = options.pop("sleeps", [])

        async def record(seconds: float) -> None:
            sleeps.append(seconds)

        options.setdefault("sleep", record)
        return AppleClient(
            options.pop("creds", self.creds),
            base_url=options.pop("base_url", BASE_URL + self.base_path),
            transport=httpx.MockTransport(self.handler),
            **options,
        )


def _copy(response: httpx.Response) -> httpx.Response:
    return httpx.Response(
        response.status_code, content=response.content, headers=dict(response.headers)
    )


def _replay(response: httpx.Response) -> Handler:
    return lambda _request: _copy(response)


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)
