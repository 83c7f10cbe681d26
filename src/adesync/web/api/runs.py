"""Sync runs: the latest runs of every token, newest first (an unknown ``token``: 404)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from adesync.services.runs import list_runs
from adesync.web.api.common import ERRORS, jsonable
from adesync.web.auth import Principal, require
from adesync.web.roles import Role
from adesync.web.state import web_state

router = APIRouter(tags=["sync runs"], responses=ERRORS)


@router.get("/sync-runs", summary="List sync runs")
async def runs(
    request: Request,
    _: Annotated[Principal, Depends(require(Role.VIEWER))],
    token: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    return jsonable(await list_runs(web_state(request).db, token, limit))
