"""The audit log: who changed what, when (admins only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from adesync.web.api.common import ERRORS, MAX_ID, jsonable
from adesync.web.audit import list_entries
from adesync.web.auth import Principal, require
from adesync.web.roles import Role
from adesync.web.state import web_state

router = APIRouter(tags=["audit"], responses=ERRORS)


class AuditPage(BaseModel):
    items: list[dict[str, Any]]
    next: int | None = Field(description="Pass as `before` for older entries; null at the end.")


@router.get("/audit", response_model=AuditPage, summary="Audit log, newest first")
async def audit(
    request: Request,
    _: Annotated[Principal, Depends(require(Role.ADMIN))],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=255)] = None,
) -> Any:
    entries = await list_entries(
        web_state(request).db,
        limit=limit + 1,
        before_id=before,
        actor=actor,
        action=action,
        target=target,
    )
    more = len(entries) > limit
    entries = entries[:limit]
    return {
        "items": jsonable([e.to_dict() for e in entries]),
        "next": entries[-1].id if more and entries else None,
    }
