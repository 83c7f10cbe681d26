"""Console users and API keys (admins only); passwords and keys are answered once."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from adesync.web import accounts
from adesync.web.api.common import ERRORS, jsonable
from adesync.web.auth import Principal, require
from adesync.web.roles import Role
from adesync.web.state import web_state

router = APIRouter(tags=["users and API keys"], responses=ERRORS)


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["viewer", "operator", "admin"]


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["viewer", "operator", "admin", "ingest"]


@router.get("/me", summary="Who am I")
async def me(
    request: Request, principal: Annotated[Principal, Depends(require(Role.VIEWER))]
) -> Any:
    return {"kind": principal.kind, "name": principal.name, "role": principal.role.value}


@router.get("/users", summary="List users")
async def list_users(
    request: Request, _: Annotated[Principal, Depends(require(Role.ADMIN))]
) -> Any:
    return jsonable([user.to_dict() for user in await accounts.list_users(web_state(request).db)])


@router.post("/users", status_code=201, summary="Add a user (password answered once)")
async def add_user(
    request: Request,
    body: UserCreate,
    principal: Annotated[Principal, Depends(require(Role.ADMIN))],
) -> Any:
    user, password = await accounts.add_user(
        web_state(request).db, body.name, Role(body.role), actor=principal.actor
    )
    return jsonable({**user.to_dict(), "password": password})


@router.delete("/users/{name}", status_code=204, summary="Delete a user")
async def delete_user(
    request: Request, name: str, principal: Annotated[Principal, Depends(require(Role.ADMIN))]
) -> Response:
    await accounts.delete_user(web_state(request).db, name, actor=principal.actor)
    return Response(status_code=204)


@router.get("/api-keys", summary="List API keys")
async def list_keys(request: Request, _: Annotated[Principal, Depends(require(Role.ADMIN))]) -> Any:
    return jsonable([k.to_dict() for k in await accounts.list_api_keys(web_state(request).db)])


@router.post("/api-keys", status_code=201, summary="Create an API key (answered once)")
async def create_key(
    request: Request,
    body: KeyCreate,
    principal: Annotated[Principal, Depends(require(Role.ADMIN))],
) -> Any:
    key, text = await accounts.create_api_key(
        web_state(request).db, body.name, Role(body.role), actor=principal.actor
    )
    return jsonable({**key.to_dict(), "key": text})


@router.delete("/api-keys/{name}", status_code=204, summary="Revoke an API key")
async def revoke_key(
    request: Request, name: str, principal: Annotated[Principal, Depends(require(Role.ADMIN))]
) -> Response:
    await accounts.revoke_api_key(web_state(request).db, name, actor=principal.actor)
    return Response(status_code=204)
