"""The console's token forms: sync now, check now, upload the token file, certificates, the
default profile and delete. Each calls the action the API and the CLI call
(:mod:`adesync.web.actions`, :mod:`adesync.services`) and shows its result, or the error worded
for the console, as a message on the token's page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from adesync.errors import AdesyncError
from adesync.services import tokens as token_service
from adesync.services.lifecycle import CheckOutcome
from adesync.tokens import MAX_TOKEN_FILE_BYTES
from adesync.web import actions
from adesync.web.console.render import flash_redirect, translator
from adesync.web.console.routes import actor_of, form_with_csrf, signed_in
from adesync.web.downloads import attachment
from adesync.web.roles import Role
from adesync.web.state import web_state
from adesync.web.wording import console_words, minutes_until

__all__ = ["token_forms_router"]

token_forms_router = APIRouter(include_in_schema=False)


@token_forms_router.post("/tokens/{name}/sync")
async def token_sync(request: Request, name: str) -> Response:
    principal = await signed_in(request, Role.OPERATOR)
    await form_with_csrf(request)
    t = translator(request)
    try:
        report = await actions.sync_now(web_state(request), actor_of(request, principal), name)
    except AdesyncError as exc:
        return flash_redirect(
            request, f"/tokens/{name}", "error", console_words(translator(request), exc)
        )
    if report["error_code"] == "sync_in_progress":
        return flash_redirect(request, f"/tokens/{name}", "ok", t("action.sync_in_progress"))
    if report["outcome"] == "ok":
        text = t(
            "token.synced",
            added=report["added"],
            modified=report["modified"],
            deleted=report["deleted"],
            unchanged=report["unchanged"],
        )
        return flash_redirect(request, f"/tokens/{name}", "ok", text)
    return flash_redirect(
        request,
        f"/tokens/{name}",
        "error",
        t("token.sync_failed", code=report.get("error_code") or report["outcome"]),
    )


@token_forms_router.post("/tokens/{name}/check")
async def token_check(request: Request, name: str) -> Response:
    principal = await signed_in(request, Role.OPERATOR)
    await form_with_csrf(request)
    t = translator(request)
    try:
        result = await actions.check_now(web_state(request), actor_of(request, principal), name)
    except AdesyncError as exc:
        return flash_redirect(
            request, f"/tokens/{name}", "error", console_words(translator(request), exc)
        )
    if result.ok:
        return flash_redirect(request, f"/tokens/{name}", "ok", t("token.check_ok"))
    if result.outcome is CheckOutcome.SKIPPED:
        text = t("action.apple_throttled", minutes=minutes_until(result.next_allowed_at))
        return flash_redirect(request, f"/tokens/{name}", "error", text)
    return flash_redirect(
        request, f"/tokens/{name}", "error", t("token.check_failed", code=result.error_code)
    )


@token_forms_router.post("/tokens/{name}/p7m")
async def token_upload(request: Request, name: str) -> Response:
    principal = await signed_in(request, Role.ADMIN)
    form = await form_with_csrf(request)
    t = translator(request)
    upload = form.get("p7m")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            return flash_redirect(request, f"/tokens/{name}", "error", t("token.upload_missing"))
        data = await upload.read(MAX_TOKEN_FILE_BYTES + 1)
    finally:
        await form.close()
    force = form.get("force") == "on"
    try:
        stored = await actions.upload_p7m(
            web_state(request), actor_of(request, principal), name, data, force=force
        )
    except AdesyncError as exc:
        return flash_redirect(
            request, f"/tokens/{name}", "error", console_words(translator(request), exc)
        )
    expires = stored.token["expires_at"]
    return flash_redirect(
        request,
        f"/tokens/{name}",
        "ok",
        t("token.uploaded", date=expires.strftime("%Y-%m-%d") if expires else "?"),
    )


@token_forms_router.get("/tokens/{name}/certificate.pem")
async def token_certificate(request: Request, name: str) -> Response:
    await signed_in(request)
    state = web_state(request)
    await token_service.get_token_document(state.db, name)
    cert = await token_service.keypair_certificate(state.db, state.box, name)
    return Response(
        cert.certificate_pem,
        media_type="application/x-pem-file",
        headers=attachment(f"{name}.pem"),
    )


@token_forms_router.post("/tokens/{name}/certificate")
async def token_new_certificate(request: Request, name: str) -> Response:
    principal = await signed_in(request, Role.ADMIN)
    await form_with_csrf(request)
    try:
        await actions.new_certificate(web_state(request), actor_of(request, principal), name)
    except AdesyncError as exc:
        return flash_redirect(
            request, f"/tokens/{name}", "error", console_words(translator(request), exc)
        )
    return flash_redirect(
        request, f"/tokens/{name}", "ok", translator(request)("token.new_keypair_done")
    )


@token_forms_router.post("/tokens/{name}/default-profile")
async def token_default_profile(request: Request, name: str) -> Response:
    principal = await signed_in(request, Role.ADMIN)
    form = await form_with_csrf(request)
    profile_uuid = str(form.get("profile_uuid") or "")
    try:
        assigned = await actions.set_default_profile(
            web_state(request), actor_of(request, principal), name, profile_uuid
        )
    except AdesyncError as exc:
        return flash_redirect(
            request, f"/tokens/{name}", "error", console_words(translator(request), exc)
        )
    return flash_redirect(
        request,
        f"/tokens/{name}",
        "ok",
        translator(request)("token.default_set", assigned=assigned),
    )


@token_forms_router.post("/tokens/{name}/delete")
async def token_delete(request: Request, name: str) -> Response:
    principal = await signed_in(request, Role.ADMIN)
    form = await form_with_csrf(request)
    if str(form.get("confirm") or "") != name:
        return flash_redirect(
            request, f"/tokens/{name}", "error", translator(request)("token.delete_confirm_wrong")
        )
    try:
        await actions.delete_token(web_state(request), actor_of(request, principal), name)
    except AdesyncError as exc:
        return flash_redirect(
            request, f"/tokens/{name}", "error", console_words(translator(request), exc)
        )
    return flash_redirect(request, "/tokens", "ok", translator(request)("token.deleted", name=name))
