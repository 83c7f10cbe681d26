"""Tokens: create (key pair), upload the ``.p7m``, list, get, delete, certificates, sync, check.

Shaped after Graph's ``depOnboardingSetting`` (``getEncryptionPublicKey``,
``generateEncryptionPublicKey``, ``uploadDepToken``, ``syncWithAppleDeviceEnrollmentProgram``)
and Fleet's ``abm_tokens``.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from adesync.services import tokens as token_service
from adesync.services.lifecycle import CheckOutcome
from adesync.services.runs import list_runs
from adesync.store.types import utcnow
from adesync.tokens import MAX_TOKEN_FILE_BYTES
from adesync.web import actions
from adesync.web.api.common import ERRORS, client_address, json_response, jsonable
from adesync.web.auth import Principal, require
from adesync.web.downloads import attachment
from adesync.web.problems import Problem
from adesync.web.roles import Role
from adesync.web.services import cached_page_of_tokens, token_extras
from adesync.web.state import web_state
from adesync.web.wording import api_words

router = APIRouter(tags=["tokens"], responses=ERRORS)


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="Unique in this installation.")
    type: Literal["abm", "asm"] = Field(default="abm", description="Apple Business or School.")
    dep_url: str | None = Field(
        default=None, max_length=500, description="Apple's base URL (simulators, proxies)."
    )


class Certificate(BaseModel):
    certificate_pem: str
    slot: Literal["pending", "active"]
    not_after: str
    created: bool
    reissued: bool


class TokenCreated(BaseModel):
    token: dict[str, Any]
    certificate: Certificate


class TokenPage(BaseModel):
    items: list[dict[str, Any]]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


class DefaultProfile(BaseModel):
    profile_uuid: str = Field(min_length=1, max_length=64)


def _actor(request: Request, principal: Principal) -> actions.Actor:
    return actions.Actor(principal, client_address(request))


def _certificate(cert: token_service.KeypairCertificate) -> Certificate:
    return Certificate(
        certificate_pem=cert.certificate_pem,
        slot=cert.slot,
        not_after=jsonable(cert.not_after),
        created=cert.created,
        reissued=cert.reissued,
    )


# Pending dep_url / type given at creation, applied when the first .p7m arrives.
@router.get("/tokens", response_model=TokenPage, summary="List tokens")
async def list_tokens(
    request: Request,
    _: Annotated[Principal, Depends(require(Role.VIEWER))],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(max_length=100)] = None,
    all: Annotated[bool, Query(description="Include key pairs waiting for a .p7m.")] = False,
    state: Annotated[Literal["healthy", "warning", "error"] | None, Query()] = None,
) -> Any:
    """Tokens by name with state, expiry, last sync and device count (keyset pages)."""
    items, next_after = await cached_page_of_tokens(
        web_state(request), limit=limit, after=after, include_waiting=all, token_state=state
    )
    return json_response({"items": items, "next": next_after})


@router.post("/tokens", status_code=201, response_model=TokenCreated, summary="Create a token")
async def create_token(
    request: Request,
    body: TokenCreate,
    principal: Annotated[Principal, Depends(require(Role.ADMIN))],
) -> Any:
    """A token waiting for its first ``.p7m``; answers the certificate to upload to ABM/ASM."""
    document, cert = await actions.create_token(
        web_state(request),
        _actor(request, principal),
        body.name,
        token_type=body.type,
        dep_url=body.dep_url,
    )
    return {"token": jsonable(document), "certificate": _certificate(cert)}


@router.put("/tokens/{name}/p7m", summary="Upload the token file (.p7m)")
async def upload_p7m(
    request: Request,
    name: str,
    principal: Annotated[Principal, Depends(require(Role.ADMIN))],
    p7m: Annotated[UploadFile, File(description="The _smime.p7m file from ABM/ASM.")],
    force: Annotated[bool, Form()] = False,
) -> Any:
    """The first token of NAME, or a renewal; ``force`` as in the CLI."""
    data = await p7m.read(MAX_TOKEN_FILE_BYTES + 1)
    stored = await actions.upload_p7m(
        web_state(request), _actor(request, principal), name, data, force=force
    )
    document = await token_service.get_token_document(web_state(request).db, name)
    return {
        "token": jsonable(document),
        "identity_verified": stored.identity_verified,
        "key_promoted": stored.key_promoted,
        "warnings": list(stored.warnings),
    }


@router.get("/tokens/{name}", summary="Get a token")
async def get_token(
    request: Request, name: str, _: Annotated[Principal, Depends(require(Role.VIEWER))]
) -> Any:
    """The listing fields, organisation, key-pair certificates and device count."""
    state = web_state(request)
    document = await token_service.show_token(state.db, name)
    document.update(await token_extras(state.db, name))
    return jsonable(document)


@router.delete("/tokens/{name}", status_code=204, summary="Delete a token")
async def delete_token(
    request: Request, name: str, principal: Annotated[Principal, Depends(require(Role.ADMIN))]
) -> Response:
    """Deletes the token and its devices, profiles and history."""
    await actions.delete_token(web_state(request), _actor(request, principal), name)
    return Response(status_code=204)


@router.get(
    "/tokens/{name}/certificate",
    response_class=PlainTextResponse,
    summary="The certificate to upload to ABM/ASM",
    responses={200: {"content": {"application/x-pem-file": {}}}},
)
async def get_certificate(
    request: Request, name: str, _: Annotated[Principal, Depends(require(Role.VIEWER))]
) -> PlainTextResponse:
    """The key pair's certificate (pending if one waits, else active): re-upload it to the same
    MDM server in ABM/ASM to renew without a new key."""
    state = web_state(request)
    await token_service.get_token_document(state.db, name)
    cert = await token_service.keypair_certificate(state.db, state.box, name)
    return PlainTextResponse(
        cert.certificate_pem,
        media_type="application/x-pem-file",
        headers=attachment(f"{name}.pem"),
    )


@router.post(
    "/tokens/{name}/certificate",
    status_code=201,
    response_model=Certificate,
    summary="A new pending key pair",
)
async def new_certificate(
    request: Request, name: str, principal: Annotated[Principal, Depends(require(Role.ADMIN))]
) -> Any:
    """A fresh pending key pair; the active one keeps working until a token made for the new
    certificate is uploaded."""
    cert = await actions.new_certificate(web_state(request), _actor(request, principal), name)
    return _certificate(cert)


def _retry_after(moment: datetime) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil((moment - utcnow()).total_seconds())))}


@router.post(
    "/tokens/{name}/sync",
    summary="Sync now",
    responses={
        202: {"description": "A sync of this token is under way: its run's id."},
        429: {"description": "Synced by hand recently, or inside Apple's Retry-After."},
    },
)
async def sync_token(
    request: Request, name: str, principal: Annotated[Principal, Depends(require(Role.OPERATOR))]
) -> Any:
    """One manual sync (at most one every 15 minutes per token, none inside Apple's
    ``Retry-After``; 429 with Retry-After else)."""
    try:
        report = await actions.sync_now(web_state(request), _actor(request, principal), name)
    except actions.SyncThrottled as exc:
        raise Problem(
            429, exc.code, api_words(exc), headers=_retry_after(exc.next_allowed_at)
        ) from None
    if report["error_code"] == "sync_in_progress":
        # One run per token: the one under way answers for this request.
        running = {"token": name, "outcome": "running", "run_id": report["run_id"]}
        return JSONResponse(jsonable(running), status_code=202)
    return jsonable(report)


@router.post(
    "/tokens/{name}/check",
    summary="Check with Apple now",
    responses={429: {"description": "Inside Apple's Retry-After: Apple was not called."}},
)
async def check_token(
    request: Request, name: str, principal: Annotated[Principal, Depends(require(Role.OPERATOR))]
) -> Any:
    """Proves the token with Apple now (``/session`` + ``/account``): clears the credential
    findings at once (terms accepted, token renewed) or records what Apple said; health is
    re-evaluated before the answer. Never uses the manual-sync allowance."""
    result = await actions.check_now(web_state(request), _actor(request, principal), name)
    if result.outcome is CheckOutcome.SKIPPED and result.next_allowed_at is not None:
        raise Problem(
            429,
            "apple_throttled",
            result.message or "Apple asked adesync to wait before calling again.",
            headers=_retry_after(result.next_allowed_at),
        )
    return jsonable(result.as_json())


@router.put("/tokens/{name}/default-profile", summary="Set the default profile")
async def set_default_profile(
    request: Request,
    name: str,
    body: DefaultProfile,
    principal: Annotated[Principal, Depends(require(Role.ADMIN))],
) -> Any:
    assigned = await actions.set_default_profile(
        web_state(request), _actor(request, principal), name, body.profile_uuid
    )
    return {"token": name, "default_profile_uuid": body.profile_uuid, "assigned": assigned}


@router.get("/tokens/{name}/runs", summary="Sync history of a token")
async def token_runs(
    request: Request,
    name: str,
    _: Annotated[Principal, Depends(require(Role.VIEWER))],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    return jsonable(await list_runs(web_state(request).db, name, limit))
