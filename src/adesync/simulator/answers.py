"""How the simulated service answers: Apple's plain-text error codes and JSON bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from email.utils import formatdate
from typing import Any

import httpx
from starlette.responses import Response

__all__ = [
    "JSON_TYPE",
    "TEXT_TYPE",
    "AdminError",
    "DroppedConnection",
    "ServiceError",
    "error_response",
    "http_date",
    "json_response",
]

# Apple's own spelling, "UTF8" without a dash, for both kinds of body.
JSON_TYPE = "application/json;charset=UTF8"
TEXT_TYPE = "text/plain;charset=UTF8"


class ServiceError(Exception):
    """An error answer of the simulated Apple service.

    ``code`` is the reason code (``INVALID_CURSOR``); the body is the code wrapped in double
    quotes as depsim writes it (``"INVALID_CURSOR"``), or empty when ``code`` is empty.
    """

    def __init__(self, status: int, code: str = "", headers: Mapping[str, str] | None = None):
        super().__init__(f"{status} {code}".strip())
        self.status = status
        self.code = code
        self.headers = dict(headers or {})


class AdminError(Exception):
    """A refused request to the simulator's own admin API (``/_sim/...``): one sentence."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised by the app to cut the connection mid-answer (the ``drop`` outage).

    Under uvicorn the client sees the headers and then a closed connection. In-process, through
    ``httpx.ASGITransport``, the exception reaches the caller and, being an
    ``httpx.TransportError``, looks to a client exactly like a network failure.
    """

    def __init__(self) -> None:
        super().__init__("the simulator dropped the connection (outage switch 'drop')")


def http_date(epoch: float) -> str:
    """An RFC 7231 ``Date`` header value."""
    return formatdate(epoch, usegmt=True)


def error_response(error: ServiceError, now: float) -> Response:
    body = f'"{error.code}"' if error.code else ""
    headers = {"Date": http_date(now), **error.headers}
    response = Response(body, status_code=error.status, headers=headers)
    response.headers["content-type"] = TEXT_TYPE
    return response


def json_response(document: Any, now: float, headers: Mapping[str, str] | None = None) -> Response:
    return raw_json_response(json.dumps(document, separators=(",", ":")), now, headers)


def raw_json_response(
    body: str | bytes, now: float, headers: Mapping[str, str] | None = None
) -> Response:
    response = Response(body, status_code=200, headers={"Date": http_date(now), **(headers or {})})
    response.headers["content-type"] = JSON_TYPE
    return response
