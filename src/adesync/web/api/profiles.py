"""Enrollment profiles: define, list, get, assign (serial list), set default, remove.

After Graph's ``enrollmentProfile`` (``setDefaultProfile``, ``updateDeviceProfileAssignment``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field

from adesync.errors import NotFoundError
from adesync.web import actions
from adesync.web.api.common import ERRORS, client_address, jsonable
from adesync.web.auth import Principal, require
from adesync.web.roles import Role
from adesync.web.services import profile_service
from adesync.web.state import web_state

router = APIRouter(tags=["profiles"], responses=ERRORS)


class Assign(BaseModel):
    serials: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=5000
    )


@router.get("/profiles", summary="List profiles")
async def list_profiles(
    request: Request,
    _: Annotated[Principal, Depends(require(Role.VIEWER))],
    token: Annotated[str | None, Query(max_length=100)] = None,
) -> Any:
    records = await profile_service(web_state(request)).list(token)
    return jsonable([record.as_json() for record in records])


@router.post("/tokens/{name}/profiles", status_code=201, summary="Define a profile")
async def define_profile(
    request: Request,
    name: str,
    principal: Annotated[Principal, Depends(require(Role.ADMIN))],
    definition: Annotated[
        dict[str, Any], Body(description="Apple's profile object (profile_name, url, ...).")
    ],
    default: Annotated[bool, Query(description="Also make it the token's default.")] = False,
) -> Any:
    """Validated against Apple's field limits first (422 naming the field), then defined."""
    document, assigned = await actions.define_profile(
        web_state(request),
        actions.Actor(principal, client_address(request)),
        name,
        definition,
        default=default,
    )
    return jsonable({**document, "assigned": assigned})


@router.get("/tokens/{name}/profiles/{profile_uuid}", summary="Get a profile")
async def get_profile(
    request: Request,
    name: str,
    profile_uuid: str,
    _: Annotated[Principal, Depends(require(Role.VIEWER))],
) -> Any:
    for record in await profile_service(web_state(request)).list(name):
        if record.profile_uuid == profile_uuid:
            return jsonable(record.as_json())
    raise NotFoundError(f"Token {name} has no profile {profile_uuid}.")


@router.post("/tokens/{name}/profiles/{profile_uuid}/assign", summary="Assign to serials")
async def assign_profile(
    request: Request,
    name: str,
    profile_uuid: str,
    body: Assign,
    principal: Annotated[Principal, Depends(require(Role.OPERATOR))],
) -> Any:
    accepted = await actions.assign_profile(
        web_state(request),
        actions.Actor(principal, client_address(request)),
        name,
        profile_uuid,
        body.serials,
    )
    return {"profile_uuid": profile_uuid, "requested": len(body.serials), "accepted": accepted}


@router.post("/tokens/{name}/profiles/{profile_uuid}/set-default", summary="Set as default")
async def set_default(
    request: Request,
    name: str,
    profile_uuid: str,
    principal: Annotated[Principal, Depends(require(Role.ADMIN))],
) -> Any:
    assigned = await actions.set_default_profile(
        web_state(request), actions.Actor(principal, client_address(request)), name, profile_uuid
    )
    return {"token": name, "default_profile_uuid": profile_uuid, "assigned": assigned}


@router.post("/tokens/{name}/profiles/remove", summary="Remove the profile from serials")
async def remove_profile(
    request: Request,
    name: str,
    body: Assign,
    principal: Annotated[Principal, Depends(require(Role.OPERATOR))],
) -> Any:
    """Apple removes the profile from the serials (``DELETE /profile/devices``); its answer per
    serial (``SUCCESS``, ``NOT_ACCESSIBLE``, ...). The next sync stores the new status."""
    devices = await actions.remove_profile(
        web_state(request), actions.Actor(principal, client_address(request)), name, body.serials
    )
    removed = sum(1 for status in devices.values() if status == "SUCCESS")
    return {"requested": len(body.serials), "removed": removed, "devices": devices}
