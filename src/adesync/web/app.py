"""The web application: REST API under ``/api/v1``, the console, help pages, probes, metrics.

``create_app`` builds it for one installation. Given a database and key (tests, the demo) it
uses them; otherwise its lifespan opens the runtime from the settings and closes it at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adesync import __version__
from adesync.config import Settings, load_settings
from adesync.errors import AdesyncError
from adesync.runtime import open_runtime
from adesync.store.database import Database
from adesync.store.migrate import require_current
from adesync.store.secrets import SecretBox
from adesync.web.access_log import redact_access_log
from adesync.web.cookies import SESSION, Cookies
from adesync.web.csrf import SameOriginWrites
from adesync.web.i18n import load_catalogues
from adesync.web.problems import (
    PROBLEM_JSON,
    Problem,
    install_problem_handlers,
    problem_document,
    problem_response,
)
from adesync.web.roles import Role
from adesync.web.sessions import load_signer
from adesync.web.state import WebState

__all__ = ["API_PREFIX", "MAX_BODY_BYTES", "create_app"]

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 64 * 1024
STATIC_DIR = Path(__file__).parent / "static"

Hook = Callable[[WebState], Awaitable[Callable[[], Awaitable[None]] | None]]

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
]


NO_STORE = (b"cache-control", b"no-store")
HSTS = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    """Adds the same defensive headers to every answer (no inline script or style anywhere),
    ``Cache-Control: no-store`` to every answer but static files (pages and API answers hold
    what only their caller may see), and HSTS when served over HTTPS (``https``)."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = SECURITY_HEADERS + ([HSTS] if https else [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                wanted = self.headers if static else [*self.headers, NO_STORE]
                extra = [(n, v) for n, v in wanted if n not in names]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, with_headers)


# GET and HEAD requests a serve process computes at once; the others wait their turn (first
# come, first served). A process runs Python on one core, so more at once only interleaves
# them, and each one in flight keeps a SQLite connection's thread busy: bench/api.py (20
# clients, 2 processes, 10 requests in flight in each) took 15-50% more CPU per request with
# 16 at once than with 4.
READ_REQUESTS_AT_ONCE = 4


class ReadRequests:
    """GET and HEAD requests: at most ``READ_REQUESTS_AT_ONCE`` computed at once, each with its
    reads in one read transaction (``Database.shared_reads``: the signed-in user or API key,
    the alert banner and the page's own rows, one pooled connection and one BEGIN/ROLLBACK for
    all). Both are let go when the answer starts, so a client slow to read a long answer holds
    neither a turn nor a connection. Other methods, /static and /healthz run as usual."""

    def __init__(self, app: ASGIApp, at_once: int = READ_REQUESTS_AT_ONCE) -> None:
        self.app = app
        self.at_once = at_once
        self._turns: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        web = getattr(scope["app"].state, "web", None) if scope["type"] == "http" else None
        if (
            web is None
            or scope["method"] not in ("GET", "HEAD")
            or scope["path"].startswith(("/static/", "/healthz"))
        ):
            await self.app(scope, receive, send)
            return
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.at_once)
        turns = self._turns
        await turns.acquire()
        holding = True
        try:
            async with web.db.shared_reads() as reads:

                async def answering(message: Message) -> None:
                    nonlocal holding
                    if message["type"] == "http.response.start" and holding:
                        holding = False
                        turns.release()
                        await reads.end()
                    await send(message)

                await self.app(scope, receive, answering)
        finally:
            if holding:
                turns.release()


class BodyLimit:
    """Refuses a request body over the cap with a problem document: at once when Content-Length
    says so, else when the bytes received pass it (a 413 raised from ``receive`` reaches the
    problem handlers, whichever route was reading)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = dict(scope.get("headers", [])).get(b"content-length", b"")
            if declared.isdigit() and int(declared) > self.limit:
                body = problem_document(
                    413,
                    "payload_too_large",
                    f"The request body is over the {self.limit // 1024} KiB limit.",
                    scope.get("path", ""),
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 413,
                        "headers": [
                            (b"content-type", PROBLEM_JSON.encode()),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            received = 0

            async def counting() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.limit:
                        raise StarletteHTTPException(
                            413, f"The request body is over the {self.limit // 1024} KiB limit"
                        )
                return message

            await self.app(scope, counting, send)
            return
        await self.app(scope, receive, send)


class ViewerKeyOnly:
    """Lets a request through to ``app`` (the metrics) only with an API key (``Authorization:
    Bearer``) whose role may read: 401 without one, 403 for an ingest key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from adesync.web.auth import current_principal

        request = Request(scope, receive)
        principal = None
        if request.headers.get("authorization"):
            try:
                principal = await current_principal(request)
            except Problem as exc:
                await problem_response(
                    request, exc.status, exc.code, exc.detail, headers=exc.headers
                )(scope, receive, send)
                return
        if principal is None or principal.kind != "apikey":
            answer = problem_response(
                request,
                401,
                "unauthorized",
                "Send a viewer API key as `Authorization: Bearer KEY` (or set "
                "ADESYNC_METRICS_AUTH=none, or serve the metrics with --metrics-port).",
                headers={"WWW-Authenticate": "Bearer"},
            )
        elif not principal.role.allows(Role.VIEWER):
            answer = problem_response(
                request, 403, "forbidden", f"The {principal.role.value} role may not read metrics."
            )
        else:
            await self.app(scope, receive, send)
            return
        await answer(scope, receive, send)


class AsgiEndpoint:
    """Wraps an ASGI callable so a Route serves it as an app (a bare function would be taken
    for a request handler)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    box: SecretBox | None = None,
    on_start: list[Hook] | None = None,
    metrics_app: ASGIApp | None = None,
) -> FastAPI:
    """Build the app. ``on_start`` hooks run once the state is ready (the scheduler in
    ``serve``) and may return a coroutine function to call at shutdown."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Serving processes configure logging before this runs: add the key filter now.
        redact_access_log()
        async with AsyncExitStack() as stack:
            if db is None or box is None:
                runtime = await stack.enter_async_context(open_runtime(settings))
                the_db, the_box = runtime.db, runtime.box
            else:
                the_db, the_box = db, box
            state = WebState(
                settings=settings,
                db=the_db,
                box=the_box,
                signer=await load_signer(the_db, the_box),
                catalogues=load_catalogues(),
            )
            app.state.web = state
            for hook in on_start or []:
                stop = await hook(state)
                if stop is not None:
                    stack.push_async_callback(stop)
            yield

    app = FastAPI(
        title="adesync",
        version=__version__,
        description=(
            "Apple Automated Device Enrollment tokens, devices and enrollment profiles. "
            "Authenticate with `Authorization: Bearer KEY` (`adesync apikeys create`). "
            "Errors are RFC 9457 problem details whose `code` is the error or finding code."
        ),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    install_problem_handlers(app, is_api=is_api)

    from adesync.web.api import api_router
    from adesync.web.console import console_router, install_console, token_forms_router

    app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(console_router)
    app.include_router(token_forms_router)
    install_console(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """The process is alive."""
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        """The database answers and its schema is current."""
        try:
            await require_current(request.app.state.web.db)
        except AdesyncError as exc:
            return JSONResponse(
                {"status": "unavailable", "code": exc.code, "detail": exc.message},
                status_code=503,
            )
        return JSONResponse({"status": "ok"})

    if metrics_app is None:
        from adesync.notify.metrics import metrics_app as prometheus_app

        # The database is opened by the lifespan, so the metrics app looks it up per request.
        metrics_app = prometheus_app(lambda: app.state.web.db)
    if settings.metrics_auth == "viewer":
        metrics_app = ViewerKeyOnly(metrics_app)
    # A route, not a mount: Prometheus scrapes /metrics exactly (a mount redirects to /metrics/).
    app.router.routes.append(Route("/metrics", AsgiEndpoint(metrics_app), include_in_schema=False))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(ReadRequests)
    app.add_middleware(
        SameOriginWrites,
        public_origin=settings.public_url,
        session_cookie=Cookies(secure=settings.https).name(SESSION),
        api_prefix=API_PREFIX,
    )
    app.add_middleware(SecurityHeaders, https=settings.https)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    return app
