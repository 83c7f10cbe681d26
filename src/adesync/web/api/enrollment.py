"""Enrollment events in: NanoMDM's and MicroMDM's webhooks, and adesync's own format.

These routes take an ``ingest`` (or ``admin``) API key in any of three places, because MDM
servers add no headers to their webhook requests: ``Authorization: Bearer KEY``, the password
of HTTP Basic auth (``https://ingest:KEY@adesync.example.com/api/v1/webhooks/nanomdm``), or
the ``key`` query parameter. Recording is idempotent (the same event twice answers 2xx and
changes nothing); a body that cannot be recorded is a 4xx problem and stores nothing.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from adesync.enrollment.errors import InvalidEnrollmentData
from adesync.enrollment.model import EventSource
from adesync.enrollment.native import native_event
from adesync.enrollment.recorder import record_events, record_webhook
from adesync.enrollment.webhooks import parse_webhook
from adesync.store.types import utcnow
from adesync.text import storable_document
from adesync.web.accounts import lookup_api_key, touch_api_key
from adesync.web.api.common import ERRORS
from adesync.web.auth import KEY_TOUCH_INTERVAL, Principal
from adesync.web.problems import PROBLEM_JSON, Problem, ProblemModel
from adesync.web.roles import Role
from adesync.web.state import web_state

__all__ = ["MAX_EVENTS_PER_REQUEST", "MAX_EVENT_BYTES", "router"]

# A check-in plist is a few KiB; anything near this is not one.
MAX_EVENT_BYTES = 64 * 1024
MAX_EVENTS_PER_REQUEST = 500

_ANSWERS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    413: {
        "model": ProblemModel,
        "description": "The body is over the size limit.",
        "content": {PROBLEM_JSON: {}},
    },
}
router = APIRouter(tags=["enrollment"], responses=_ANSWERS)


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Basic realm="adesync", Bearer'},
    )


def presented_key(request: Request) -> str | None:
    """The API key of the request: Bearer token, HTTP Basic password or ``key`` parameter
    (:func:`ingest_principal` takes only an ingest key from the parameter)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return value
        if scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII text
                raise _unauthorized("The HTTP Basic credentials are not valid base64.") from None
            _, _, password = decoded.partition(":")
            if password:
                return password
            raise _unauthorized("Put the API key in the password of the HTTP Basic credentials.")
        raise _unauthorized("Send the API key as a Bearer token or an HTTP Basic password.")
    key = request.query_params.get("key")
    return key or None


async def ingest_principal(request: Request) -> Principal:
    """The caller, who must hold an ``ingest`` or ``admin`` API key."""
    key = presented_key(request)
    if key is None:
        raise _unauthorized(
            "Send an ingest API key as a Bearer token, an HTTP Basic password or ?key=."
        )
    state = web_state(request)
    found = await lookup_api_key(state.db, key)
    if found is None:
        raise _unauthorized("The API key is not valid (revoked or mistyped).")
    if found.role is not Role.INGEST and "authorization" not in request.headers:
        # A URL ends up in access logs and proxies' histories: no stronger key belongs there.
        raise Problem(
            403,
            "forbidden",
            f"?key= takes an ingest key only; {found.name} has the {found.role.value} role, so "
            "send it as a Bearer token or an HTTP Basic password.",
        )
    if not found.role.allows(Role.INGEST):
        raise Problem(
            403,
            "forbidden",
            f"Posting enrollment events needs an ingest or admin key; {found.name} has the "
            f"{found.role.value} role.",
        )
    now = time.monotonic()
    if now - state.key_touched.get(found.id, -KEY_TOUCH_INTERVAL) >= KEY_TOUCH_INTERVAL:
        state.key_touched[found.id] = now
        await touch_api_key(state.db, found.id)
    return Principal("apikey", found.name, found.role)


Ingest = Annotated[Principal, Depends(ingest_principal)]


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_EVENT_BYTES:
        raise Problem(
            413,
            "payload_too_large",
            f"The request body is over the {MAX_EVENT_BYTES // 1024} KiB limit.",
        )
    if not body.strip():
        raise InvalidEnrollmentData("The request body is empty.")
    return body


class WebhookAnswer(BaseModel):
    """What adesync did with a webhook event."""

    recorded: bool = Field(description="An event was stored.")
    event: Literal["authenticated", "enrolled", "checked_out"] | None
    serial_number: str | None
    udid: str | None
    reason: str | None = Field(
        description="Why nothing was stored: duplicate, follow_up_token_update, user_channel "
        "or topic_not_tracked."
    )
    unknown_serial: bool = Field(
        description="No token lists this serial yet; the event is kept and matched when a "
        "sync brings the device."
    )


_WEBHOOK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["topic"],
                    "properties": {
                        "topic": {"type": "string", "example": "mdm.Authenticate"},
                        "event_id": {"type": "string"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "checkin_event": {
                            "type": "object",
                            "properties": {
                                "udid": {"type": "string"},
                                "enrollment_id": {"type": "string"},
                                "raw_payload": {"type": "string", "format": "byte"},
                                "token_update_tally": {"type": "integer"},
                            },
                        },
                    },
                }
            }
        },
    }
}


async def _webhook(request: Request, source: EventSource) -> dict[str, object]:
    message = parse_webhook(await _body(request), source)
    outcome = await record_webhook(web_state(request).db, message, utcnow())
    return outcome.to_dict()


@router.post(
    "/webhooks/nanomdm",
    response_model=WebhookAnswer,
    summary="NanoMDM webhook",
    openapi_extra=_WEBHOOK_BODY,
)
async def nanomdm_webhook(request: Request, _: Ingest) -> Any:
    """Point NanoMDM's `-webhook-url` here. `mdm.Authenticate` records `authenticated` (and
    maps the UDID to the serial number), the TokenUpdate with `token_update_tally` 1 records
    `enrolled`, `mdm.CheckOut` records `checked_out`; other topics are acknowledged and
    ignored. Always 200 on success (NanoMDM treats anything else as a failure)."""
    return await _webhook(request, EventSource.NANOMDM)


@router.post(
    "/webhooks/micromdm",
    response_model=WebhookAnswer,
    summary="MicroMDM webhook",
    openapi_extra=_WEBHOOK_BODY,
)
async def micromdm_webhook(request: Request, _: Ingest) -> Any:
    """Point MicroMDM's `-command-webhook-url` here. As for NanoMDM; MicroMDM sends no tally,
    so a TokenUpdate records `enrolled` unless the device's latest event already is."""
    return await _webhook(request, EventSource.MICROMDM)


class EnrollmentEventIn(BaseModel):
    """One event in adesync's own format."""

    serial_number: str = Field(examples=["C02MT66KFLHH"])
    event: Literal["authenticated", "enrolled", "checked_out"]
    at: str = Field(description="ISO 8601 with a zone.", examples=["2025-01-31T09:00:00Z"])


class RecordAnswer(BaseModel):
    recorded: int = Field(description="Events stored now.")
    duplicates: int = Field(description="Events already stored (nothing changed for them).")
    unknown_serials: int = Field(
        description="Serial numbers no token lists yet (kept; matched when they sync)."
    )


@router.post(
    "/enrollment-events",
    response_model=RecordAnswer,
    status_code=201,
    summary="Record enrollment events",
    responses={200: {"model": RecordAnswer, "description": "Every event was already stored."}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            EnrollmentEventIn.model_json_schema(),
                            {
                                "type": "array",
                                "maxItems": MAX_EVENTS_PER_REQUEST,
                                "items": EnrollmentEventIn.model_json_schema(),
                            },
                        ]
                    }
                }
            },
        }
    },
)
async def enrollment_events(request: Request, _: Ingest) -> Any:
    """One event `{serial_number, event, at}` or an array of up to 500, from any MDM. All
    are checked before any is stored. 201 when something was stored, 200 when every event
    was already known."""
    try:
        document = json.loads(await _body(request))
    except (UnicodeDecodeError, ValueError):
        raise InvalidEnrollmentData("The request body is not JSON.") from None
    if not storable_document(document):
        raise InvalidEnrollmentData(
            "The request body holds a NUL character or a lone surrogate, which cannot be stored."
        )
    now = utcnow()
    if isinstance(document, list):
        if not document:
            raise InvalidEnrollmentData("The array holds no events.")
        if len(document) > MAX_EVENTS_PER_REQUEST:
            raise InvalidEnrollmentData(
                f"Send at most {MAX_EVENTS_PER_REQUEST} events per request."
            )
        events = [
            native_event(item, EventSource.API, now, where=f"Event {number}: ")
            for number, item in enumerate(document, 1)
        ]
    else:
        events = [native_event(document, EventSource.API, now)]
    result = await record_events(web_state(request).db, events, now)
    return JSONResponse(result.to_dict(), status_code=201 if result.recorded else 200)
