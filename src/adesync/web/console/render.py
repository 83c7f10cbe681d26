"""Rendering console pages: the shared context (language, user, CSRF token, alert banner),
flash messages, and redirects that only ever go to a local path."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from adesync.web.auth import CSRF_COOKIE, LANG_COOKIE, Principal, current_principal
from adesync.web.console.views import alert_banner, days_left, expiry_cell
from adesync.web.health_view import alert_tokens
from adesync.web.i18n import LANGUAGE_NAMES, LANGUAGES, Translator, pick_language
from adesync.web.state import web_state

__all__ = [
    "TEMPLATES",
    "compile_templates",
    "days_left",
    "flash",
    "flash_redirect",
    "local_path",
    "redirect",
    "render",
    "translator",
]

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
# The templates ship with the package: compiled once, not looked at on disk for every render
# (a console page stat()ed each of its templates again).
TEMPLATES.env.auto_reload = False
# For macros.html, whose macros do not see a page's context.
TEMPLATES.env.globals["expiry_cell"] = expiry_cell


def compile_templates() -> None:
    """Compile every console template now (about 0.1 s), not in a visitor's first requests."""
    for name in TEMPLATES.env.list_templates():
        TEMPLATES.env.get_template(name)


FLASH_COOKIE = "adesync_flash"


def translator(request: Request) -> Translator:
    state = web_state(request)
    lang = pick_language(
        request.cookies.get(LANG_COOKIE),
        state.settings.lang,
        request.headers.get("accept-language"),
    )
    return state.catalogues.translator(lang)


def local_path(value: str | None, default: str = "/tokens") -> str:
    """``value`` when it is a path on this site, else ``default`` (no open redirects)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def csrf_nonce(request: Request) -> tuple[str, bool]:
    """The CSRF cookie's nonce, and whether it is new (to be set on the answer)."""
    nonce = request.cookies.get(CSRF_COOKIE)
    if nonce and 16 <= len(nonce) <= 64:
        return nonce, False
    cached = getattr(request.state, "new_csrf", None)
    if isinstance(cached, str):
        return cached, True
    nonce = secrets.token_urlsafe(24)
    request.state.new_csrf = nonce
    return nonce, True


def set_csrf_cookie(request: Request, response: Response) -> None:
    nonce, new = csrf_nonce(request)
    if new:
        response.set_cookie(
            CSRF_COOKIE, nonce, httponly=True, samesite="strict", secure=_secure(request)
        )


def flash(request: Request, response: Response, kind: str, text: str) -> None:
    """A one-time message shown on the next page (signed, so only adesync writes it)."""
    signed = web_state(request).signer.sign(json.dumps({"kind": kind, "text": text}))
    response.set_cookie(
        FLASH_COOKIE, signed, httponly=True, samesite="strict", secure=_secure(request)
    )


def flash_redirect(request: Request, path: str, kind: str, text: str) -> Response:
    """A redirect to ``path`` that shows ``text`` there once."""
    response = redirect(request, path)
    flash(request, response, kind, text)
    return response


def _take_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    value = web_state(request).signer.unsign(raw)
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(local_path(path), status_code=303)


async def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    active: str = "",
) -> Response:
    t = translator(request)
    principal: Principal | None = await current_principal(request)
    nonce, _new = csrf_nonce(request)
    state = web_state(request)
    page: dict[str, Any] = {
        "t": t,
        "lang": t.lang,
        "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "principal": principal,
        "csrf_token": state.signer.csrf_token(nonce),
        "alert": alert_banner(*await alert_tokens(state), t) if principal is not None else None,
        "active": active,
        "flash": _take_flash(request),
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "days_left": days_left,
        "can_operate": principal is not None and principal.role.rank >= 1,
        "can_admin": principal is not None and principal.role.rank >= 2,
    }
    page.update(context or {})
    response = TEMPLATES.TemplateResponse(request, template, page, status_code=status)
    set_csrf_cookie(request, response)
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE)
    return response
