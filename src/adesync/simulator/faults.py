"""Fault injection in the manner of Apple's depsim: scripted answers, outages, throttling, delay.

A *script* is an ordered list of ``{"count": n, "response": "<name>"}`` entries per endpoint;
each request to that endpoint consumes one use of the first entry, ``success`` letting the
request through. Response names follow depsim (``forbidden_t_c_not_signed``,
``bad_request_invalid_cursor``, ...); ``bad_request_<code>`` and ``forbidden_<code>`` answer 400 /
403 with ``<CODE>`` upper-cased, so every Apple reason code can be scripted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from adesync.simulator.answers import AdminError, ServiceError

__all__ = [
    "DEPSIM_ENDPOINT_KEYS",
    "ENDPOINTS",
    "PER_DEVICE_ANSWERS",
    "FaultPlan",
    "Outage",
    "ScriptEntry",
    "Throttle",
    "parse_script",
    "resolve_endpoint",
    "scripted_error",
]

# Endpoint names used by scripts and switches, with the Apple paths they stand for.
ENDPOINTS: dict[str, str] = {
    "session": "GET /session",
    "account": "GET /account",
    "fetch_devices": "POST /server/devices",
    "sync_devices": "POST /devices/sync",
    "device_details": "POST /devices",
    "disown_devices": "POST /devices/disown",
    "define_profile": "POST /profile",
    "get_profile": "GET /profile",
    "assign_profile": "PUT|POST /profile/devices",
    "remove_profile": "DELETE /profile/devices",
    "activation_lock": "POST /device/activationlock",
}

# depsim's configuration keys, accepted as aliases.
DEPSIM_ENDPOINT_KEYS: dict[str, str] = {
    "get_session_responses": "session",
    "get_account_responses": "account",
    "post_server_devices_responses": "fetch_devices",
    "post_devices_sync_responses": "sync_devices",
    "post_devices_responses": "device_details",
    "post_devices_disown_responses": "disown_devices",
    "post_profile_responses": "define_profile",
    "get_profile_responses": "get_profile",
    "put_profile_devices_responses": "assign_profile",
    "delete_profile_devices_responses": "remove_profile",
    "post_device_activationlock_responses": "activation_lock",
}

# Scripted answers that keep the request's shape but force every serial's result.
PER_DEVICE_ANSWERS = {
    "not_accessible": "NOT_ACCESSIBLE",
    "failed": "FAILED",
    "throttled": "THROTTLED",
}
_PER_DEVICE_ENDPOINTS = {"define_profile", "assign_profile", "remove_profile", "disown_devices"}

_FIXED: dict[str, tuple[int, str]] = {
    "bad_request": (400, ""),
    "forbidden": (403, "FORBIDDEN"),
    "unauthorized": (401, "UNAUTHORIZED"),
    "invalid_method": (405, ""),
    "not_found": (404, "NOT_FOUND"),
    "too_many_requests": (429, "TOO_MANY_REQUESTS"),
    "service_unavailable": (503, ""),
    "internal_server_error": (500, ""),
    "token_rejected": (401, "token_rejected"),
    "forbidden_token_rejected": (403, "token_rejected"),
    "forbidden_signature_invalid": (403, "signature_invalid"),
}
_SPECIAL = {"success", "dropped_connection", *PER_DEVICE_ANSWERS}


def resolve_endpoint(name: str) -> str:
    """The endpoint name for ``name`` or a depsim key; ``AdminError`` if unknown."""
    endpoint = DEPSIM_ENDPOINT_KEYS.get(name, name)
    if endpoint not in ENDPOINTS:
        known = ", ".join(sorted(ENDPOINTS))
        raise AdminError(f"Unknown endpoint {name!r}; use one of: {known}.")
    return endpoint


def _known_response(name: str) -> bool:
    if name in _FIXED or name in _SPECIAL:
        return True
    for prefix in ("bad_request_", "forbidden_"):
        rest = name.removeprefix(prefix)
        if rest != name and rest.replace("_", "").isalnum() and rest.islower():
            return True
    return False


def scripted_error(name: str, retry_after: int | None) -> ServiceError | None:
    """The error a scripted answer ``name`` stands for, or ``None`` for a non-error answer."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if name == "unauthorized":
        headers["WWW-Authenticate"] = "ADM-Auth-Token"
    if name in _FIXED:
        status, code = _FIXED[name]
        return ServiceError(status, code, headers)
    if name.startswith("bad_request_"):
        return ServiceError(400, name.removeprefix("bad_request_").upper(), headers)
    if name.startswith("forbidden_"):
        return ServiceError(403, name.removeprefix("forbidden_").upper(), headers)
    return None


@dataclass(slots=True)
class ScriptEntry:
    count: int
    response: str
    retry_after: int | None = None

    def describe(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"count": self.count, "response": self.response}
        if self.retry_after is not None:
            entry["retry_after"] = self.retry_after
        return entry


def parse_script(endpoint: str, entries: Any) -> list[ScriptEntry]:
    """Validate a script for ``endpoint``; ``AdminError`` naming the first bad entry."""
    if not isinstance(entries, list):
        raise AdminError(f"The script for {endpoint} must be a list of {{count, response}}.")
    script: list[ScriptEntry] = []
    for position, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise AdminError(f"Entry {position} of the {endpoint} script is not an object.")
        count, response = entry.get("count", 1), entry.get("response")
        retry_after = entry.get("retry_after")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise AdminError(
                f"Entry {position} of the {endpoint} script needs a count of 1 or more."
            )
        if not isinstance(response, str) or not _known_response(response):
            raise AdminError(
                f"Entry {position} of the {endpoint} script has an unknown response {response!r}."
            )
        if response in PER_DEVICE_ANSWERS and endpoint not in _PER_DEVICE_ENDPOINTS:
            raise AdminError(
                f"The response {response!r} only applies to endpoints with per-device results."
            )
        if retry_after is not None and (
            not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0
        ):
            raise AdminError(f"Entry {position} of the {endpoint} script has a bad retry_after.")
        script.append(ScriptEntry(count, response, retry_after))
    return script


OutageMode = Literal["500", "503", "drop"]


@dataclass(slots=True)
class Outage:
    """Every matching request fails: ``500``, ``503`` without ``Retry-After``, or a dropped
    connection."""

    mode: OutageMode
    endpoints: frozenset[str] | None = None


@dataclass(slots=True)
class Throttle:
    """Every matching request is refused with ``status`` (429 or 503) and ``Retry-After``."""

    status: int
    retry_after: int | None
    endpoints: frozenset[str] | None = None


@dataclass(slots=True)
class FaultPlan:
    """The faults of one scope: the whole simulator, or one MDM server."""

    scripts: dict[str, deque[ScriptEntry]] = field(default_factory=dict)
    outage: Outage | None = None
    throttle: Throttle | None = None
    delay_ms: int = 0

    def empty(self) -> bool:
        return (
            not self.scripts and self.outage is None and self.throttle is None and not self.delay_ms
        )

    def next_scripted(self, endpoint: str) -> ScriptEntry | None:
        """Consume one use of the first scripted answer for ``endpoint``."""
        queue = self.scripts.get(endpoint)
        if not queue:
            return None
        head = queue[0]
        head.count -= 1
        if head.count <= 0:
            queue.popleft()
            if not queue:
                del self.scripts[endpoint]
        return ScriptEntry(1, head.response, head.retry_after)

    def describe(self) -> dict[str, Any]:
        return {
            "scripts": {k: [e.describe() for e in q] for k, q in self.scripts.items()},
            "outage": None
            if self.outage is None
            else {"mode": self.outage.mode, "endpoints": _names(self.outage.endpoints)},
            "throttle": None
            if self.throttle is None
            else {
                "status": self.throttle.status,
                "retry_after": self.throttle.retry_after,
                "endpoints": _names(self.throttle.endpoints),
            },
            "delay_ms": self.delay_ms,
        }


def _names(endpoints: frozenset[str] | None) -> list[str] | None:
    return None if endpoints is None else sorted(endpoints)
