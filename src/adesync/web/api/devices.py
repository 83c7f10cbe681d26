"""Devices: filtered, keyset-paged listing; one device with its timeline.

Fields follow Apple's device object; ``enrollment_state`` follows Graph's
``importedAppleDeviceIdentity`` (null until enrollment events arrive).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from adesync.errors import NotFoundError
from adesync.sync.queries import DeviceFilter, device_assignment, device_timeline, list_devices
from adesync.web.api.common import ERRORS, MAX_ID, json_response, jsonable
from adesync.web.auth import Principal, require
from adesync.web.roles import Role
from adesync.web.state import web_state

router = APIRouter(tags=["devices"], responses=ERRORS)

ProfileStatus = Literal["empty", "assigned", "pushed", "removed"]
EnrollmentStateName = Literal["not_contacted", "pushed", "enrolled", "checked_out", "failed"]


class DevicePage(BaseModel):
    items: list[dict[str, Any]]
    next: int | None = Field(description="Pass as `after` for the next page; null at the end.")


@router.get("/devices", response_model=DevicePage, summary="List devices")
async def devices(
    request: Request,
    _: Annotated[Principal, Depends(require(Role.VIEWER))],
    token: Annotated[str | None, Query(max_length=100)] = None,
    profile_status: Annotated[ProfileStatus | None, Query()] = None,
    enrollment_state: Annotated[EnrollmentStateName | None, Query()] = None,
    deleted: Annotated[bool | None, Query(description="Default: live devices only.")] = False,
    serial: Annotated[str | None, Query(max_length=64, description="Part of a serial.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="The `next` of the page before.")
    ] = None,
) -> Any:
    found = await list_devices(
        web_state(request).db,
        DeviceFilter(
            token=token,
            profile_status=profile_status,
            deleted=deleted,
            serial_contains=serial,
            enrollment_state=enrollment_state,
        ),
        limit=limit + 1,
        after_id=after,
    )
    more = len(found) > limit
    found = found[:limit]
    return json_response({"items": found, "next": found[-1]["id"] if more and found else None})


async def one_device(request: Request, token: str, serial: str) -> dict[str, Any]:
    db = web_state(request).db
    found = await list_devices(db, DeviceFilter(token=token, serial_contains=serial), limit=50)
    device = next((d for d in found if d["serial_number"] == serial), None)
    if device is None:
        raise NotFoundError(f"Token {token} has no device with serial number {serial}.")
    from adesync.web.enrollment_view import merged_timeline

    device["timeline"] = await merged_timeline(db, serial, await device_timeline(db, token, serial))
    device["assignment"] = await device_assignment(db, token, serial)
    result: dict[str, Any] = jsonable(device)
    return result


@router.get("/tokens/{name}/devices/{serial}", summary="Get a device with its timeline")
async def device(
    request: Request,
    name: str,
    serial: str,
    _: Annotated[Principal, Depends(require(Role.VIEWER))],
) -> Any:
    """Apple's fields, the latest assignment, and what happened to it (operations and
    assignment answers), oldest first."""
    return await one_device(request, name, serial)
