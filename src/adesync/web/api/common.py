"""What the API routes share: error answers in the OpenAPI document, paging, JSON shaping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request, Response

from adesync.web.problems import PROBLEM_JSON, ProblemModel

__all__ = ["ERRORS", "MAX_ID", "client_address", "json_body", "json_response", "jsonable"]


# The largest id a database row can have (64-bit signed): larger keyset cursors are invalid.
MAX_ID = 2**63 - 1


def _problem(description: str) -> dict[str, Any]:
    return {"model": ProblemModel, "description": description, "content": {PROBLEM_JSON: {}}}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem("No or invalid credentials."),
    403: _problem("The caller's role does not allow this."),
    404: _problem("No such object."),
    422: _problem("The request is not valid."),
}


def jsonable(value: Any) -> Any:
    """Timestamps as ISO 8601 UTC with ``Z``, recursively."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


# Timestamps as ``jsonable`` writes them (seconds, ``Z``) for the aware UTC datetimes the store
# reads; other keys than strings as the json module writes them.
_ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_OMIT_MICROSECONDS | orjson.OPT_NON_STR_KEYS


def json_body(document: Any) -> bytes:
    """``document`` as UTF-8 JSON from orjson, timestamps as ISO 8601 UTC with ``Z`` (a page of
    100 tokens: 0.07 ms, against 0.9 ms with the json module and a callback per timestamp).
    Timestamps must be aware UTC, as the store reads them: another offset would be written as
    it is, and ``jsonable`` converts them."""
    return orjson.dumps(document, default=_not_json, option=_ORJSON_OPTIONS)


def _not_json(value: object) -> Any:
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def json_response(document: Any, status: int = 200) -> Response:
    """``document`` as JSON straight from orjson: the listings skip re-validating what the
    store already typed."""
    return Response(json_body(document), status_code=status, media_type="application/json")


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None
