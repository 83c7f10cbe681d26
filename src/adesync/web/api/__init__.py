"""The REST API under ``/api/v1`` (see the OpenAPI document at ``/api/v1/openapi.json``)."""

from __future__ import annotations

from fastapi import APIRouter

from adesync.web.api.accounts import router as accounts_router
from adesync.web.api.audit import router as audit_router
from adesync.web.api.devices import router as devices_router
from adesync.web.api.enrollment import router as enrollment_router
from adesync.web.api.health import router as health_router
from adesync.web.api.profiles import router as profiles_router
from adesync.web.api.runs import router as runs_router
from adesync.web.api.tokens import router as tokens_router

__all__ = ["api_router"]

api_router = APIRouter()
for router in (
    tokens_router,
    devices_router,
    profiles_router,
    health_router,
    runs_router,
    audit_router,
    accounts_router,
    enrollment_router,
):
    api_router.include_router(router)
