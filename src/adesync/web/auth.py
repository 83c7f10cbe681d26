"""Who is asking: an API key (``Authorization: Bearer ades_...``) or a console session cookie,
and whether their role allows the route.

Routes declare what they need with ``Depends(require(Role.X))``. A cookie-authenticated
request that changes something must carry the CSRF token of its session (form field
``csrf_token`` on console forms, header ``X-CSRF-Token`` on API calls; :mod:`adesync.web.csrf`);
API keys need none (browsers never send them on their own).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adesync.web.accounts import lookup_api_key, touch_api_key
from adesync.web.cookies import SESSION
from adesync.web.csrf import csrf_valid
from adesync.web.problems import Problem
from adesync.web.roles import Role
from adesync.web.sessions import resolve_session
from adesync.web.state import web_state

__all__ = ["Principal", "csrf_ok", "current_principal", "require"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEY_TOUCH_INTERVAL = 60.0


@dataclass(frozen=True)
class Principal:
    kind: str  # "user" | "apikey"
    name: str
    role: Role
    session_id: str | None = None
    # The session's CSRF secret (console users only).
    csrf_secret: str | None = field(default=None, repr=False)

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"{self.kind}:{self.name}"


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


async def current_principal(request: Request) -> Principal | None:
    """The caller, or None when the request carries no credentials at all.
    Invalid credentials are a 401 at once (never silently anonymous)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    state = web_state(request)
    principal: Principal | None = None
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthorized("Send the API key as `Authorization: Bearer KEY`.")
        key = await lookup_api_key(state.db, value.strip())
        if key is None:
            raise _unauthorized("The API key is not valid (revoked or mistyped).")
        now = time.monotonic()
        if now - state.key_touched.get(key.id, -KEY_TOUCH_INTERVAL) >= KEY_TOUCH_INTERVAL:
            state.key_touched[key.id] = now
            await touch_api_key(state.db, key.id)
        principal = Principal("apikey", key.name, key.role)
    else:
        cookie = state.cookies.read(request, SESSION)
        session_id = state.signer.unsign(cookie) if cookie else None
        if session_id is not None:
            live = await resolve_session(state.db, session_id)
            if live is not None:
                user = live.user
                principal = Principal("user", user.name, user.role, session_id, live.csrf_secret)
    request.state.principal = principal
    return principal


async def csrf_ok(request: Request, token: str | None) -> bool:
    """Whether ``token`` is the caller's CSRF token: their session's when signed in, else
    their sign-in form's."""
    principal = await current_principal(request)
    secret = principal.csrf_secret if principal is not None else None
    return csrf_valid(request, secret, token)


# Declares the scheme in the OpenAPI document; the header itself is read by current_principal.
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key from `adesync apikeys create` (or a console session cookie).",
)


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that answers 401 without credentials and 403 when ``role`` is not allowed."""

    async def dependency(
        request: Request,
        _bearer: HTTPAuthorizationCredentials | None = Security(BEARER),  # noqa: B008
    ) -> Principal:
        principal = await current_principal(request)
        if principal is None:
            raise _unauthorized("Sign in, or send an API key as `Authorization: Bearer KEY`.")
        if not principal.role.allows(role):
            raise Problem(
                403,
                "forbidden",
                f"This needs the {role.value} role; {principal.name} has the "
                f"{principal.role.value} role.",
            )
        if (
            principal.kind == "user"
            and request.method not in SAFE_METHODS
            and request.url.path.startswith("/api/")
            and not csrf_valid(request, principal.csrf_secret, request.headers.get("x-csrf-token"))
        ):
            raise Problem(403, "csrf_failed", "The X-CSRF-Token header is missing or wrong.")
        return principal

    return dependency
