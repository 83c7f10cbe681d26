"""Rendering console pages: the shared context (language, user, CSRF token, alert banner),
flash messages, and redirects that only ever go to a local path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from adesync.web.auth import Principal, current_principal
from adesync.web.console.views import alert_banner, days_left, expiry_cell
from adesync.web.cookies import FLASH, LANG
from adesync.web.csrf import form_token, issue_presession
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


def translator(request: Request) -> Translator:
    state = web_state(request)
    lang = pick_language(
        state.cookies.read(request, LANG),
        state.settings.lang,
        request.headers.get("accept-language"),
    )
    return state.catalogues.translator(lang)


def local_path(value: str | None, default: str = "/tokens") -> str:
    """``value`` when it is a path on this site, else ``default`` (no open redirects)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def flash(request: Request, response: Response, kind: str, text: str) -> None:
    """A one-time message shown on the next page (signed, so only adesync writes it)."""
    state = web_state(request)
    signed = state.signer.sign(json.dumps({"kind": kind, "text": text}))
    state.cookies.set(response, FLASH, signed)


def flash_redirect(request: Request, path: str, kind: str, text: str) -> Response:
    """A redirect to ``path`` that shows ``text`` there once."""
    response = redirect(request, path)
    flash(request, response, kind, text)
    return response


def _take_flash(request: Request) -> dict[str, str] | None:
    raw = web_state(request).cookies.read(request, FLASH)
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
    state = web_state(request)
    page: dict[str, Any] = {
        "t": t,
        "lang": t.lang,
        "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "principal": principal,
        "csrf_token": form_token(request, principal.csrf_secret if principal else None),
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
    issue_presession(request, response)
    if state.cookies.read(request, FLASH):
        state.cookies.delete(response, FLASH)
    return response
