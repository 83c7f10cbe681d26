"""Health: the report (the JSON of ``adesync diagnose --json``) and findings per token."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from adesync.services import tokens as token_service
from adesync.web.api.common import ERRORS, jsonable
from adesync.web.auth import Principal, require
from adesync.web.health_view import health_report
from adesync.web.roles import Role
from adesync.web.state import web_state

router = APIRouter(tags=["health"], responses=ERRORS)


@router.get("/health", summary="The health report")
async def report(
    request: Request,
    _: Annotated[Principal, Depends(require(Role.VIEWER))],
    token: Annotated[str | None, Query(max_length=100)] = None,
    lang: Annotated[Literal["en", "zh-CN"], Query()] = "en",
) -> Any:
    """Status, the alert and every finding, in the shape `adesync diagnose --json` prints;
    the steps name the console's buttons and forms, not shell commands."""
    if token is not None:
        await token_service.get_token_document(web_state(request).db, token)
    return jsonable(await health_report(web_state(request), token=token, lang=lang))


@router.get("/tokens/{name}/findings", summary="Findings of one token")
async def findings(
    request: Request,
    name: str,
    _: Annotated[Principal, Depends(require(Role.VIEWER))],
    lang: Annotated[Literal["en", "zh-CN"], Query()] = "en",
) -> Any:
    await token_service.get_token_document(web_state(request).db, name)
    document = await health_report(web_state(request), token=name, lang=lang)
    return jsonable(document.get("findings", []))
