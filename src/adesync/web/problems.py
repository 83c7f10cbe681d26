"""RFC 9457 problem details: every API error is ``application/problem+json`` with a ``code``.

The ``code`` is adesync's error code or, for a token-level Apple failure, the finding code
itself (``terms_not_accepted``, ...); for those, ``type`` links the finding's help page.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from adesync.errors import AdesyncError
from adesync.health import RULES
from adesync.web.wording import api_words

log = logging.getLogger("adesync.web")

__all__ = [
    "PROBLEM_JSON",
    "Problem",
    "ProblemModel",
    "install_problem_handlers",
    "problem_document",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"

# Codes that are findings (their page at /help/findings explains cause and remedy): every
# rule's code, so a new finding links its help page without a second list.
FINDING_CODES = frozenset(rule.code for rule in RULES)


class ProblemModel(BaseModel):
    """The body of every error answer (RFC 9457) plus adesync's ``code``."""

    type: str = Field(default="about:blank", description="A URI naming the problem type.")
    title: str = Field(description="A short summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="One sentence about this occurrence.")
    code: str = Field(description="adesync's error code, or the finding code.")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Per-field validation errors (422 only)."
    )


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.errors = errors


def problem_type(code: str) -> str:
    return f"/help/findings#{code}" if code in FINDING_CODES else "about:blank"


def problem_document(status: int, code: str, detail: str, instance: str) -> bytes:
    """A problem document's bytes, for the ASGI middleware that answer before any route."""
    return json.dumps(
        {
            "type": problem_type(code),
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "code": code,
            "instance": instance,
        }
    ).encode()


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        out.append({"field": ".".join(loc), "message": str(error.get("msg", "invalid"))})
    return out


def _first_sentence(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "The request is not valid."
    first = errors[0]
    field = first["field"].removeprefix("body.").removeprefix("query.").removeprefix("path.")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{field or 'The request'}: {first['message']}{more}."


def install_problem_handlers(app: FastAPI, *, is_api: Any) -> None:
    """Answer errors with problem details on API paths; ``is_api(request)`` tells which.
    Other paths (the console) fall through to ``app.state.console_error`` when set (with the
    message, or the AdesyncError for the console to word)."""

    async def on_adesync_error(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, AdesyncError)
        if not is_api(request) and getattr(request.app.state, "console_error", None):
            return await request.app.state.console_error(request, exc.http_status, exc)
        return problem_response(request, exc.http_status, exc.code, api_words(exc))

    async def on_problem(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, Problem)
        if not is_api(request) and getattr(request.app.state, "console_error", None):
            return await request.app.state.console_error(request, exc.status, exc.detail)
        return problem_response(
            request, exc.status, exc.code, exc.detail, headers=exc.headers, errors=exc.errors
        )

    async def on_validation(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        if not is_api(request) and getattr(request.app.state, "console_error", None):
            return await request.app.state.console_error(request, 422, _first_sentence(errors))
        return problem_response(
            request, 422, "validation_error", _first_sentence(errors), errors=errors
        )

    async def on_http(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if not detail.endswith("."):
            detail += "."
        if not is_api(request) and getattr(request.app.state, "console_error", None):
            return await request.app.state.console_error(request, exc.status_code, detail)
        code = _HTTP_CODES.get(exc.status_code, "error")
        return problem_response(
            request, exc.status_code, code, detail, headers=dict(exc.headers or {})
        )

    async def on_too_deep(request: Request, exc: Exception) -> Any:
        # Only input nested thousands deep (JSON, a plist) gets Python this far down.
        log.warning("request to %s nested too deeply to read", request.url.path)
        return await on_problem(
            request, Problem(400, "too_deeply_nested", "The request is nested too deeply to read.")
        )

    app.add_exception_handler(RecursionError, on_too_deep)
    app.add_exception_handler(AdesyncError, on_adesync_error)
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
