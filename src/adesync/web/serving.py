"""The serving limits of ``adesync serve`` that uvicorn's settings do not give: a deadline for
each request's head (request line and headers), and its size counted exactly (h11's limit,
``h11_max_incomplete_event_size``, applies only while a head has not ended: one that ends in
the same read as it passes the limit is parsed whole).

uvicorn's ``timeout_keep_alive`` only closes a connection that stays idle after an answer; a
new connection, or one that sends a byte now and then, may take forever over its headers
(slowloris). The deadline is kept in two places that only public interfaces join:

- ``HeadDeadline`` wraps the HTTP protocol of each connection (through the event loop that
  uvicorn's ``loop`` setting names, ``new_event_loop``): it starts the clock when the connection
  opens, and closes the connection when the clock runs out.
- ``HeadLimits``, an ASGI middleware, stops the clock when a request reaches the app (its
  head is complete) and starts it again when the app has answered. It finds its connection in
  a context variable that ``HeadDeadline`` sets while uvicorn parses the bytes it received: the
  request's task is created there, and a task copies the context it was created in.

The time a request's head may take is counted from the connection's opening or the previous
answer; a request body is not limited by it (``BodyLimit`` caps its size).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from adesync.web.problems import PROBLEM_JSON

try:  # uvicorn's "auto" loop too: uvloop where it is installed
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]

__all__ = ["HeadDeadline", "HeadLimits", "head_bytes", "new_event_loop"]

ProtocolFactory = Callable[[], asyncio.BaseProtocol]

# The connection whose received bytes uvicorn is parsing (and, copied into each request's
# task, the connection the request came on).
_CONNECTION: ContextVar[HeadDeadline | None] = ContextVar("adesync_connection", default=None)


class HeadDeadline(asyncio.Protocol):
    """One connection's HTTP protocol (``inner``), closed unless each request's head reaches
    the app within ``timeout()`` seconds of the connection opening or of the previous answer
    (``None``: no deadline)."""

    def __init__(self, inner: asyncio.Protocol, timeout: Callable[[], float | None]) -> None:
        self.inner = inner
        self.timeout = timeout
        self.transport: asyncio.BaseTransport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.await_head()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        token = _CONNECTION.set(self)
        try:
            self.inner.data_received(data)
        finally:
            _CONNECTION.reset(token)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.head_received()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def await_head(self) -> None:
        """Start the clock for the next request's head."""
        self.head_received()
        seconds = self.timeout()
        if seconds is not None:
            self.timer = asyncio.get_running_loop().call_later(seconds, self.expire)

    def head_received(self) -> None:
        """Stop the clock: a request is in the app (or the connection is gone)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def expire(self) -> None:
        self.timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class HeadLimits:
    """ASGI middleware for the limits of a request's head. A request whose line and headers
    pass ``max_bytes`` is answered 431 and its connection closed (h11 refuses one that has
    not ended by then with 400, before it is read whole; this catches one whose end came in
    the same read). At start-up it tells the serving loop how long a head may take
    (``timeout_seconds``); while a request is in the app, its connection's clock is stopped."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            loop = asyncio.get_running_loop()
            if isinstance(loop, DeadlineLoop):
                loop.header_timeout = self.timeout_seconds
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = _CONNECTION.get()
        if connection is not None:
            connection.head_received()
        try:
            if head_bytes(scope) > self.max_bytes:
                await self.refuse(send)
            else:
                await self.app(scope, receive, send)
        finally:
            if connection is not None:
                connection.await_head()

    async def refuse(self, send: Send) -> None:
        body = orjson.dumps(
            {
                "type": "about:blank",
                "title": "Request Header Fields Too Large",
                "status": 431,
                "detail": f"The request line and headers are over the {self.max_bytes} byte limit.",
                "code": "headers_too_large",
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 431,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def head_bytes(scope: Scope) -> int:
    """About how many bytes the request line and headers of ``scope`` took on the wire."""
    line = len(scope["method"]) + len(scope.get("raw_path") or b"") + 11  # " " " HTTP/1.1\r\n"
    query = len(scope.get("query_string") or b"")
    line += query + 1 if query else 0
    return line + sum(len(name) + len(value) + 4 for name, value in scope["headers"]) + 2


class DeadlineLoop:
    """What the serving event loops add: each HTTP connection they serve is wrapped in a
    ``HeadDeadline`` with the loop's ``header_timeout`` (set by ``HeadLimits``)."""

    header_timeout: float | None = None

    def with_deadline(self, protocol_factory: ProtocolFactory) -> ProtocolFactory:
        def make() -> asyncio.BaseProtocol:
            inner = protocol_factory()
            if not isinstance(inner, asyncio.Protocol):
                return inner
            return HeadDeadline(inner, lambda: self.header_timeout)

        return make


class AsyncioDeadlineLoop(DeadlineLoop, asyncio.SelectorEventLoop):
    """asyncio's own loop, serving connections with a head deadline."""

    async def create_server(
        self, protocol_factory: ProtocolFactory, *args: Any, **kwargs: Any
    ) -> asyncio.Server:
        factory = self.with_deadline(protocol_factory)
        return await super().create_server(factory, *args, **kwargs)

    async def connect_accepted_socket(  # type: ignore[override]
        self, protocol_factory: ProtocolFactory, *args: Any, **kwargs: Any
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        factory = self.with_deadline(protocol_factory)
        return await super().connect_accepted_socket(factory, *args, **kwargs)


if uvloop is not None:
    # uvloop's stubs differ from asyncio's in many signatures; none matters here.
    class UvloopDeadlineLoop(DeadlineLoop, uvloop.Loop):  # type: ignore[misc]
        """uvloop, serving connections with a head deadline."""

        async def create_server(
            self, protocol_factory: ProtocolFactory, *args: Any, **kwargs: Any
        ) -> Any:
            factory = self.with_deadline(protocol_factory)
            return await super().create_server(factory, *args, **kwargs)

        async def connect_accepted_socket(
            self, protocol_factory: ProtocolFactory, *args: Any, **kwargs: Any
        ) -> Any:
            factory = self.with_deadline(protocol_factory)
            return await super().connect_accepted_socket(factory, *args, **kwargs)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A serving event loop, for uvicorn's ``loop`` setting
    (``"adesync.web.serving:new_event_loop"``, a custom loop as uvicorn documents it): uvloop
    where it is installed (as uvicorn's ``auto`` chooses), else asyncio's own loop."""
    if uvloop is not None:
        return UvloopDeadlineLoop()
    return AsyncioDeadlineLoop()  # pragma: no cover
