"""Console routes. Every page needs a signed-in user (else a redirect to /login); every form
carries the CSRF token; actions check the role and write the audit log (through actions)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from adesync.errors import AdesyncError, NotFoundError
from adesync.health.catalogue import State
from adesync.services import tokens as token_service
from adesync.web import accounts, actions
from adesync.web.api.common import MAX_ID, client_address
from adesync.web.audit import list_entries
from adesync.web.auth import Principal, csrf_ok, current_principal
from adesync.web.charts import RunBar, expiry_chart, runs_chart
from adesync.web.console.render import (
    TEMPLATES,
    flash,
    flash_redirect,
    local_path,
    redirect,
    render,
    translator,
)
from adesync.web.console.views import token_list
from adesync.web.cookies import LANG, PRESESSION, SESSION
from adesync.web.health_view import health_report
from adesync.web.i18n import LANGUAGES
from adesync.web.roles import Role
from adesync.web.services import (
    console_page_of_tokens,
    page_of_tokens,
    profile_service,
    token_extras,
)
from adesync.web.sessions import SESSION_LIFETIME, end_session, start_session
from adesync.web.state import web_state
from adesync.web.wording import console_words

__all__ = ["console_router", "install_console"]

console_router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100
TOKEN_STATES = frozenset(s.value for s in State)


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Forbidden(Exception):
    pass


async def signed_in(request: Request, role: Role = Role.VIEWER) -> Principal:
    principal = await current_principal(request)
    if principal is None or principal.kind != "user":
        raise LoginRequired(request.url.path)
    if not principal.role.allows(role):
        raise Forbidden()
    return principal


async def form_with_csrf(request: Request) -> FormData:
    form = await request.form()
    token = form.get("csrf_token")
    if not isinstance(token, str) or not await csrf_ok(request, token):
        raise Forbidden()
    return form


def actor_of(request: Request, principal: Principal) -> actions.Actor:
    return actions.Actor(principal, client_address(request))


def install_console(app: FastAPI) -> None:
    async def on_login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"/login?next={exc.next_path}", status_code=303)

    async def on_forbidden(request: Request, exc: Exception) -> Response:
        t = translator(request)
        return await render(
            request, "error.html", {"message": t("error.forbidden"), "code": 403}, status=403
        )

    async def console_error(request: Request, status: int, message: str | AdesyncError) -> Response:
        if isinstance(message, AdesyncError):
            message = console_words(translator(request), message)
        return await render(
            request, "error.html", {"message": message, "code": status}, status=status
        )

    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(Forbidden, on_forbidden)
    app.state.console_error = console_error


# -- sign-in, sign-out, language ------------------------------------------------------------


@console_router.get("/")
async def home(request: Request) -> Response:
    return redirect(request, "/tokens")


@console_router.get("/login")
async def login_page(request: Request, next: str = "/tokens") -> Response:
    return await render(request, "login.html", {"next": local_path(next), "error": None})


@console_router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    t = translator(request)
    next_path = local_path(str(form.get("next") or "/tokens"))
    token = form.get("csrf_token")
    if not isinstance(token, str) or not await csrf_ok(request, token):
        return await render(
            request, "login.html", {"next": next_path, "error": t("login.expired")}, status=403
        )
    name = str(form.get("username") or "").strip()[:64]
    password = str(form.get("password") or "")[:1024]
    state = web_state(request)
    address = client_address(request) or "unknown"
    wait = await state.limiter.admit(state.db, address, name)
    if wait > 0:
        response = await render(
            request,
            "login.html",
            {"next": next_path, "error": t("login.too_many", minutes=math.ceil(wait / 60))},
            status=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    user = await accounts.authenticate(state.db, name, password) if name and password else None
    if user is None:
        return await render(
            request, "login.html", {"next": next_path, "error": t("login.failed")}, status=401
        )
    await state.limiter.succeeded(state.db, address, name)
    # A new session, so a new CSRF secret; the sign-in form's secret is done with.
    session_id = await start_session(state.db, user)
    response = redirect(request, next_path)
    state.cookies.set(
        response,
        SESSION,
        state.signer.sign(session_id),
        max_age=int(SESSION_LIFETIME.total_seconds()),
    )
    state.cookies.delete(response, PRESESSION)
    return response


@console_router.post("/logout")
async def logout(request: Request) -> Response:
    await form_with_csrf(request)
    principal = await current_principal(request)
    state = web_state(request)
    if principal is not None and principal.session_id is not None:
        await end_session(state.db, principal.session_id)
    response = redirect(request, "/login")
    state.cookies.delete(response, SESSION)
    return response


@console_router.post("/lang")
async def set_language(request: Request) -> Response:
    form = await form_with_csrf(request)
    lang = str(form.get("lang") or "en")
    response = redirect(request, str(form.get("next") or "/tokens"))
    if lang in LANGUAGES:
        web_state(request).cookies.set(response, LANG, lang, max_age=365 * 86400)
    return response


# -- tokens ---------------------------------------------------------------------------------


@console_router.get("/tokens")
async def tokens_page(
    request: Request, after: str | None = None, state: str | None = None
) -> Response:
    await signed_in(request)
    t = translator(request)
    # A state the list can be narrowed to (the alert banner links to state=error); any other
    # value shows every token.
    token_state = state if state in TOKEN_STATES else None
    items, next_after = await console_page_of_tokens(
        web_state(request), limit=PAGE_SIZE, after=after, token_state=token_state
    )
    rows, bars = token_list(items, t, TEMPLATES.get_template("token_row.html"))
    chart = expiry_chart(
        bars[:40], title=t("chart.expiry.title"), description=t("chart.expiry.desc")
    )
    return await render(
        request,
        "tokens.html",
        {
            "rows": rows,
            "next_after": next_after,
            "state_filter": token_state,
            "state_filter_label": t(f"state.{token_state}") if token_state else "",
            "chart": chart if bars else None,
        },
        active="tokens",
    )


@console_router.post("/tokens")
async def create_token(request: Request) -> Response:
    principal = await signed_in(request, Role.ADMIN)
    form = await form_with_csrf(request)
    name = str(form.get("name") or "").strip()
    token_type = str(form.get("token_type") or "abm")
    dep_url = str(form.get("dep_url") or "").strip() or None
    try:
        await actions.create_token(
            web_state(request),
            actor_of(request, principal),
            name,
            token_type=token_type,
            dep_url=dep_url,
        )
    except AdesyncError as exc:
        response = redirect(request, "/tokens")
        flash(request, response, "error", console_words(translator(request), exc))
        return response
    response = redirect(request, f"/tokens/{name}")
    flash(request, response, "ok", translator(request)("token.created", name=name))
    return response


async def _token_or_404(request: Request, name: str) -> dict[str, Any]:
    state = web_state(request)
    document = await token_service.show_token(state.db, name)
    document.update(await token_extras(state.db, name))
    return document


@console_router.get("/tokens/{name}")
async def token_page(request: Request, name: str) -> Response:
    await signed_in(request)
    t = translator(request)
    state = web_state(request)
    token = await _token_or_404(request, name)
    report = await health_report(state, token=name, lang=t.lang)
    from adesync.services.runs import list_runs
    from adesync.sync.queries import DeviceFilter, list_devices
    from adesync.web.enrollment_view import token_funnel

    runs = await list_runs(state.db, name, 30)
    devices = await list_devices(state.db, DeviceFilter(token=name, deleted=False), limit=25)
    profiles = await profile_service(state).list(name)
    chart = runs_chart(
        [
            RunBar(
                str(run["started_at"])[:16],
                int(run["added"] or 0) + int(run["modified"] or 0) + int(run["deleted"] or 0),
                str(run["outcome"]),
            )
            for run in reversed(runs)
        ],
        title=t("chart.runs.title"),
        description=t("chart.runs.desc"),
    )
    return await render(
        request,
        "token.html",
        {
            "token": token,
            "findings": report.get("findings", []),
            "runs": runs,
            "chart": chart if runs else None,
            "devices": devices,
            "profiles": profiles,
            "funnel": await token_funnel(state.db, name),
        },
        active="tokens",
    )


# -- devices --------------------------------------------------------------------------------


@console_router.get("/devices")
async def devices_page(request: Request) -> Response:
    await signed_in(request)
    from adesync.sync.queries import PROFILE_STATUSES, DeviceFilter, list_devices

    q = request.query_params
    status = q.get("profile_status") or None
    if status not in PROFILE_STATUSES:
        status = None
    deleted_param = q.get("deleted", "false")
    deleted = {"true": True, "false": False}.get(deleted_param)
    after_raw = q.get("after")
    after = int(after_raw) if after_raw and after_raw.isdigit() and len(after_raw) < 19 else None
    filters = DeviceFilter(
        token=q.get("token") or None,
        profile_status=status,
        deleted=deleted,
        serial_contains=(q.get("serial") or "")[:64] or None,
        enrollment_state=q.get("enrollment_state") or None,
    )
    found = await list_devices(web_state(request).db, filters, limit=PAGE_SIZE + 1, after_id=after)
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    query_without_after = "&".join(f"{k}={v}" for k, v in q.items() if k != "after" and v)
    token_names = [t["name"] for t in (await page_of_tokens(web_state(request).db, limit=1000))[0]]
    return await render(
        request,
        "devices.html",
        {
            "devices": found,
            "filters": filters,
            "deleted_param": deleted_param,
            "next_after": found[-1]["id"] if more and found else None,
            "base_query": query_without_after,
            "token_names": token_names,
        },
        active="devices",
    )


@console_router.get("/tokens/{name}/devices/{serial}")
async def device_page(request: Request, name: str, serial: str) -> Response:
    await signed_in(request)
    from adesync.sync.queries import (
        DeviceFilter,
        device_assignment,
        device_timeline,
        list_devices,
    )

    db = web_state(request).db
    found = await list_devices(db, DeviceFilter(token=name, serial_contains=serial), limit=50)
    device = next((d for d in found if d["serial_number"] == serial), None)
    if device is None:
        raise NotFoundError(f"Token {name} has no device with serial number {serial}.")
    from adesync.web.enrollment_view import device_enrollment, merged_timeline

    return await render(
        request,
        "device.html",
        {
            "device": device,
            "timeline": await merged_timeline(db, serial, await device_timeline(db, name, serial)),
            "assignment": await device_assignment(db, name, serial),
            "steps": await device_enrollment(db, name, serial),
        },
        active="devices",
    )


# -- profiles -------------------------------------------------------------------------------

PROFILE_TEXT_FIELDS = (
    "profile_name",
    "url",
    "configuration_web_url",
    "support_phone_number",
    "support_email_address",
    "department",
    "org_magic",
    "language",
    "region",
)
PROFILE_BOOL_FIELDS = (
    "is_supervised",
    "is_mandatory",
    "is_mdm_removable",
    "await_device_configured",
)


async def _profiles_context(request: Request) -> dict[str, Any]:
    state = web_state(request)
    items, _ = await page_of_tokens(state.db, limit=1000)
    return {
        "profiles": await profile_service(state).list(None),
        "token_names": [t["name"] for t in items],
        "text_fields": PROFILE_TEXT_FIELDS,
        "bool_fields": PROFILE_BOOL_FIELDS,
    }


@console_router.get("/profiles")
async def profiles_page(request: Request) -> Response:
    await signed_in(request)
    context = await _profiles_context(request)
    context.update(values={}, field_error=None, error=None)
    return await render(request, "profiles.html", context, active="profiles")


@console_router.post("/profiles")
async def define_profile(request: Request) -> Response:
    principal = await signed_in(request, Role.ADMIN)
    form = await form_with_csrf(request)
    token = str(form.get("token") or "")
    definition: dict[str, Any] = {}
    for name in PROFILE_TEXT_FIELDS:
        value = str(form.get(name) or "").strip()
        if value:
            definition[name] = value
    for name in PROFILE_BOOL_FIELDS:
        if form.get(name) == "on":
            definition["is_mdm_removable" if name == "locked" else name] = name != "locked"
    skip = str(form.get("skip_setup_items") or "").replace(",", " ").split()
    if skip:
        definition["skip_setup_items"] = skip
    default = form.get("default") == "on"
    try:
        document, assigned = await actions.define_profile(
            web_state(request), actor_of(request, principal), token, definition, default=default
        )
    except AdesyncError as exc:
        context = await _profiles_context(request)
        context.update(
            values={**definition, "token": token, "default": default},
            field_error=getattr(exc, "field", None),
            error=console_words(translator(request), exc),
        )
        return await render(request, "profiles.html", context, status=422, active="profiles")
    return flash_redirect(
        request,
        "/profiles",
        "ok",
        translator(request)("profile.defined", uuid=document["profile_uuid"], assigned=assigned),
    )


# -- health, audit, help --------------------------------------------------------------------


@console_router.get("/health")
async def health_page(request: Request) -> Response:
    await signed_in(request)
    t = translator(request)
    report = await health_report(web_state(request), token=None, lang=t.lang)
    return await render(request, "health.html", {"report": report}, active="health")


@console_router.get("/audit")
async def audit_page(
    request: Request, before: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None
) -> Response:
    await signed_in(request, Role.ADMIN)
    entries = await list_entries(web_state(request).db, limit=PAGE_SIZE + 1, before_id=before)
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    return await render(
        request,
        "audit.html",
        {
            "entries": entries,
            "next_before": entries[-1].id if more and entries else None,
            "as_json": lambda d: json.dumps(d, ensure_ascii=False) if d else "",
        },
        active="audit",
    )


@console_router.get("/help/findings")
async def help_findings(request: Request) -> Response:
    t = translator(request)
    from adesync.web.findings_help import catalogue

    principal = await current_principal(request)
    _ = principal
    return await render(
        request,
        "help_findings.html",
        {"entries": catalogue(t.lang), "now": datetime.now(UTC)},
        active="help",
    )
