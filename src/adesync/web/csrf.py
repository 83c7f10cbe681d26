"""Cross-site request forgery, refused twice.

- Every cookie-authenticated change carries a CSRF token (form field ``csrf_token``, header
  ``X-CSRF-Token``): an HMAC of a secret the server issued. A signed-in user's secret is stored
  with the session (a new one at each sign-in); before sign-in, the sign-in form's secret lives
  in a signed cookie that expires after ``PRESESSION_LIFETIME``. A cookie planted by another
  site (cookies ignore ports) is no secret of this server, so it yields no valid token.
- :class:`SameOriginWrites` refuses a POST, PUT, PATCH or DELETE a browser sent from another
  origin (``Sec-Fetch-Site``, else ``Origin``), before any route runs.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from adesync.web.cookies import PRESESSION
from adesync.web.problems import PROBLEM_JSON, problem_document
from adesync.web.state import web_state

__all__ = ["SameOriginWrites", "csrf_valid", "form_token", "issue_presession", "same_origin"]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _expected_secret(request: Request, session_secret: str | None) -> str | None:
    if session_secret is not None:
        return "session:" + session_secret
    state = web_state(request)
    signed = state.cookies.read(request, PRESESSION)
    secret = state.signer.presession_secret(signed) if signed else None
    return None if secret is None else "presession:" + secret


def csrf_valid(request: Request, session_secret: str | None, token: str | None) -> bool:
    """Whether ``token`` is the CSRF token of the caller's session (``session_secret``), or of
    their sign-in form when they have no session."""
    secret = _expected_secret(request, session_secret)
    return web_state(request).signer.csrf_valid(secret, token)


def form_token(request: Request, session_secret: str | None) -> str:
    """The CSRF token a page's forms carry; without a session or a valid pre-session cookie a
    new pre-session is started (:func:`issue_presession` sets its cookie on the answer)."""
    state = web_state(request)
    secret = _expected_secret(request, session_secret)
    if secret is None:
        signed = getattr(request.state, "new_presession", None)
        if not isinstance(signed, str):
            signed = state.signer.new_presession()
            request.state.new_presession = signed
        secret = "presession:" + str(state.signer.presession_secret(signed))
    return state.signer.csrf_token(secret)


def issue_presession(request: Request, response: Response) -> None:
    """Set the pre-session cookie that :func:`form_token` started, if it started one."""
    signed = getattr(request.state, "new_presession", None)
    if isinstance(signed, str):
        web_state(request).cookies.set(response, PRESESSION, signed)


def same_origin(headers: dict[bytes, bytes], public_origin: str | None) -> bool:
    """Whether a browser's request comes from this site: ``Sec-Fetch-Site`` says so, or (from
    browsers without it) ``Origin`` is the public URL's origin or names the ``Host`` asked. A
    request with neither header is not from a browser (browsers send ``Origin`` with every
    POST) and passes; it still needs its credentials and CSRF token."""
    site = headers.get(b"sec-fetch-site")
    if site is not None:
        return site in (b"same-origin", b"none")
    origin = headers.get(b"origin")
    if origin is None:
        return True
    text = origin.decode("latin-1").lower()
    if public_origin is not None and text == public_origin:
        return True
    host = headers.get(b"host", b"").decode("latin-1").lower()
    return bool(host) and urlsplit(text).netloc == host and text.startswith(("http://", "https://"))


class SameOriginWrites:
    """Refuses (403) a change sent by a browser from another origin: every POST, PUT, PATCH
    and DELETE to the console, and those to the API that a session cookie authenticates (an
    API key is never sent by a browser on its own, so key-authenticated calls pass)."""

    def __init__(
        self, app: ASGIApp, *, public_origin: str | None, session_cookie: str, api_prefix: str
    ) -> None:
        self.app = app
        self.public_origin = public_origin
        self.session_cookie = session_cookie.encode()
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        is_api = scope["path"].startswith(self.api_prefix)
        if (is_api and not self._cookie_authenticated(headers)) or same_origin(
            headers, self.public_origin
        ):
            await self.app(scope, receive, send)
            return
        await _refuse(scope, send, is_api)

    def _cookie_authenticated(self, headers: dict[bytes, bytes]) -> bool:
        if b"authorization" in headers:
            return False
        return self.session_cookie + b"=" in headers.get(b"cookie", b"")


REFUSAL = (
    "This change was sent from another site, so adesync refused it. If it came from "
    "adesync's own page, set ADESYNC_PUBLIC_URL to the address the browser shows."
)


async def _refuse(scope: Scope, send: Send, is_api: bool) -> None:
    if is_api:
        body = problem_document(403, "cross_origin", REFUSAL, scope.get("path", ""))
        content_type = PROBLEM_JSON.encode()
    else:
        body, content_type = REFUSAL.encode(), b"text/plain; charset=utf-8"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})
