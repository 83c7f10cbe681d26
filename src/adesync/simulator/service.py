"""The simulated Apple endpoints: ``/session``, ``/account``, devices, profiles, activation lock.

Every request goes through the same gate, in this order: delay, outage switch, throttle switch,
``User-Agent``, the endpoint's scripted answer, authentication (OAuth on ``/session``, the
session token elsewhere), then the endpoint itself.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from adesync.simulator.answers import (
    JSON_TYPE,
    DroppedConnection,
    ServiceError,
    error_response,
    json_response,
    raw_json_response,
)
from adesync.simulator.catalog import format_time
from adesync.simulator.cursors import Cursor
from adesync.simulator.faults import PER_DEVICE_ANSWERS, FaultPlan, scripted_error
from adesync.simulator.model import Server, Session, render_record
from adesync.simulator.oauth import TIMESTAMP_WINDOW, parse_oauth, signature_matches
from adesync.simulator.profiles import validate_profile
from adesync.simulator.state import Simulator

__all__ = ["ROUTES", "AppleService"]

# path -> method -> endpoint name
ROUTES: dict[str, dict[str, str]] = {
    "/session": {"GET": "session"},
    "/account": {"GET": "account"},
    "/server/devices": {"POST": "fetch_devices"},
    "/devices/sync": {"POST": "sync_devices"},
    "/devices": {"POST": "device_details"},
    "/devices/disown": {"POST": "disown_devices"},
    "/profile": {"POST": "define_profile", "GET": "get_profile"},
    "/profile/devices": {
        "PUT": "assign_profile",
        "POST": "assign_profile",
        "DELETE": "remove_profile",
    },
    "/device/activationlock": {"POST": "activation_lock"},
}
_UNAUTHORIZED = {"WWW-Authenticate": "ADM-Auth-Token"}
_DEFAULT_THROTTLE_SECONDS = 60


class _DroppedResponse(Response):
    """Starts an answer that promises a body, then cuts the connection."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", JSON_TYPE.encode()), (b"content-length", b"4096")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        raise DroppedConnection()


@dataclass(slots=True)
class Call:
    """One authenticated request to a device or profile endpoint."""

    server: Server
    body: Any
    query: dict[str, str]
    version: int
    now: float
    forced: str | None  # per-device answer forced by a script (NOT_ACCESSIBLE, FAILED, THROTTLED)
    forced_retry_after: int | None


def _protocol_version(request: Request) -> int:
    # An absent header means version 1, which Apple keeps supporting as the default.
    try:
        return max(1, int(request.headers.get("x-server-protocol-version", "1")))
    except ValueError:
        return 1


def _json_body(raw: bytes, *, empty: Any = None) -> Any:
    if not raw.strip():
        if empty is not None:
            return empty
        raise ServiceError(400, "MALFORMED_REQUEST_BODY")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ServiceError(400, "MALFORMED_REQUEST_BODY") from None


def _serials(body: Any) -> list[str]:
    if not isinstance(body, dict):
        raise ServiceError(400, "MALFORMED_REQUEST_BODY")
    devices = body.get("devices")
    if devices is None:
        raise ServiceError(400, "DEVICE_ID_REQUIRED")
    if not isinstance(devices, list) or not all(isinstance(s, str) for s in devices):
        raise ServiceError(400, "MALFORMED_REQUEST_BODY")
    return devices


class AppleService:
    """The ASGI endpoint answering every Apple path for one :class:`Simulator`."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._handlers: dict[str, Callable[[Call], Response]] = {
            "account": self.account,
            "fetch_devices": self.fetch_devices,
            "sync_devices": self.sync_devices,
            "device_details": self.device_details,
            "disown_devices": self.disown_devices,
            "define_profile": self.define_profile,
            "get_profile": self.get_profile,
            "assign_profile": self.assign_profile,
            "remove_profile": self.remove_profile,
            "activation_lock": self.activation_lock,
        }

    # -- the gate ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.dispatch(request)
        await response(scope, receive, send)

    async def dispatch(self, request: Request) -> Response:
        sim = self.sim
        methods = ROUTES.get(request.url.path.rstrip("/") or "/")
        if methods is None:
            return error_response(ServiceError(404, "NOT_FOUND"), sim.now())
        endpoint = methods.get(request.method)
        if endpoint is None:
            return error_response(ServiceError(405), sim.now())
        raw = await request.body()
        with sim.lock:
            sim.requests[endpoint] += 1
            plans = self._plans(request, endpoint)
            delay = max(plan.delay_ms for plan in plans)
        if delay:
            await asyncio.sleep(delay / 1000)
        with sim.lock:
            now = sim.now()
            try:
                return self._answer(request, endpoint, plans, raw, now)
            except ServiceError as error:
                return error_response(error, now)

    def _plans(self, request: Request, endpoint: str) -> list[FaultPlan]:
        """The fault plans that apply: the server's (when the request names one), then global."""
        sim = self.sim
        server: Server | None = None
        if endpoint == "session":
            try:
                params = parse_oauth(request.url.query, request.headers.get("authorization"))
            except ServiceError:
                params = None
            token = None if params is None else sim.tokens.get(params.token)
            server = None if token is None else sim.servers.get(token.server_uuid)
        else:
            session = sim.sessions.get(request.headers.get("x-adm-auth-session", ""))
            server = None if session is None else sim.servers.get(session.server_uuid)
        if server is None or server.faults.empty():
            return [sim.faults]
        return [server.faults, sim.faults]

    def _answer(
        self, request: Request, endpoint: str, plans: list[FaultPlan], raw: bytes, now: float
    ) -> Response:
        for plan in plans:
            outage = plan.outage
            if outage is not None and (outage.endpoints is None or endpoint in outage.endpoints):
                if outage.mode == "drop":
                    return _DroppedResponse()
                raise ServiceError(int(outage.mode))
        for plan in plans:
            throttle = plan.throttle
            if throttle is not None and (
                throttle.endpoints is None or endpoint in throttle.endpoints
            ):
                headers = (
                    {}
                    if throttle.retry_after is None
                    else {"Retry-After": str(throttle.retry_after)}
                )
                code = "TOO_MANY_REQUESTS" if throttle.status == 429 else ""
                raise ServiceError(throttle.status, code, headers)
        agent = request.headers.get("user-agent", "").strip()
        if not agent:
            raise ServiceError(400, "USER_AGENT_MISSING")
        if any(agent.startswith(prefix) for prefix in self.sim.settings.rejected_user_agents):
            raise ServiceError(400, "USER_AGENT_INVALID")
        forced, forced_retry = None, None
        for plan in plans:
            entry = plan.next_scripted(endpoint)
            if entry is None:
                continue
            if entry.response == "dropped_connection":
                return _DroppedResponse()
            error = scripted_error(entry.response, entry.retry_after)
            if error is not None:
                raise error
            forced = PER_DEVICE_ANSWERS.get(entry.response)
            forced_retry = entry.retry_after
            break
        version = _protocol_version(request)
        if endpoint == "session":
            return self.session(request, now)
        server, headers = self._authenticate(request, now)
        call = Call(
            server=server,
            body=raw,
            query=dict(request.query_params),
            version=version,
            now=now,
            forced=forced,
            forced_retry_after=forced_retry,
        )
        response = self._handlers[endpoint](call)
        response.headers.update(headers)
        return response

    # -- authentication ---------------------------------------------------------------------

    def session(self, request: Request, now: float) -> Response:
        """``GET /session``: verify the OAuth signature and open a session for the token."""
        sim = self.sim
        params = parse_oauth(request.url.query, request.headers.get("authorization"))
        token = sim.tokens.get(params.token)
        if token is None:
            raise ServiceError(401, "token_rejected")
        if token.consumer_key != params.consumer_key:
            raise ServiceError(401, "consumer_key_rejected")
        if not signature_matches(
            params, request.method, str(request.url), token.consumer_secret, token.access_secret
        ):
            raise ServiceError(401, "signature_invalid")
        if abs(params.timestamp - now) > TIMESTAMP_WINDOW:
            raise ServiceError(401, "timestamp_refused")
        if not sim.nonces.use(params, now):
            raise ServiceError(401, "nonce_used")
        if token.state != "active" or token.expiry <= now:
            raise ServiceError(401, "token_rejected")
        server = sim.servers[token.server_uuid]
        if server.deleted:
            raise ServiceError(403, "ACCESS_DENIED")
        if server.org.terms_pending:
            raise ServiceError(403, "T_C_NOT_SIGNED")
        self._prune_sessions(now)
        session_token = secrets.token_hex(64).upper()
        sim.sessions[session_token] = Session(server.uuid, token.access_token, now)
        return json_response({"auth_session_token": session_token}, now)

    def _prune_sessions(self, now: float) -> None:
        idle = self.sim.settings.session_idle_seconds
        stale = [k for k, s in self.sim.sessions.items() if now - s.last_used > idle]
        for key in stale:
            del self.sim.sessions[key]

    def _authenticate(self, request: Request, now: float) -> tuple[Server, dict[str, str]]:
        """The server a session token belongs to, and headers to add (a rotated token)."""
        sim = self.sim
        presented = request.headers.get("x-adm-auth-session", "")
        if not presented:
            raise ServiceError(401, "UNAUTHORIZED", _UNAUTHORIZED)
        session = sim.sessions.get(presented)
        if session is None:
            raise ServiceError(403, "FORBIDDEN")
        if now - session.last_used > sim.settings.session_idle_seconds:
            del sim.sessions[presented]
            raise ServiceError(401, "UNAUTHORIZED", _UNAUTHORIZED)
        server = sim.servers[session.server_uuid]
        token = sim.tokens[session.access_token]
        if server.deleted:
            raise ServiceError(403, "ACCESS_DENIED")
        if token.state != "active" or token.expiry <= now:
            raise ServiceError(403, "token_rejected")
        if server.org.terms_pending:
            raise ServiceError(403, "T_C_NOT_SIGNED")
        session.last_used = now
        session.answered += 1
        every = sim.settings.session_rotate_every
        if every and session.answered % every == 0:
            rotated = secrets.token_hex(64).upper()
            sim.sessions[rotated] = session
            if sim.settings.session_rotation_retires_old:
                del sim.sessions[presented]
            self._forget_old_tokens(session, rotated, presented)
            return server, {"X-ADM-Auth-Session": rotated}
        return server, {}

    def _forget_old_tokens(self, session: Session, rotated: str, presented: str) -> None:
        # A session stays reachable by its newest two tokens, so memory stays bounded while a
        # request in flight with the previous token still succeeds.
        keep = {rotated, presented}
        for key in [k for k, s in self.sim.sessions.items() if s is session and k not in keep]:
            del self.sim.sessions[key]

    # -- account ----------------------------------------------------------------------------

    def account(self, call: Call) -> Response:
        server, settings = call.server, self.sim.settings
        org = server.org
        doc: dict[str, Any] = {
            "server_name": server.name,
            "server_uuid": server.uuid,
            "admin_id": server.admin_id,
            "facilitator_id": server.admin_id,
            "org_name": org.name,
            "org_email": org.email,
            "org_phone": org.phone,
            "org_address": org.address,
        }
        if call.version >= 3:
            limit = {"default": settings.page_limit_default, "maximum": settings.page_limit_maximum}
            doc["urls"] = [
                {"uri": "/session", "http_method": ["GET"]},
                {"uri": "/account", "http_method": ["GET"]},
                {"uri": "/server/devices", "http_method": ["POST"], "limit": limit},
                {"uri": "/devices/sync", "http_method": ["POST"], "limit": limit},
                {"uri": "/devices", "http_method": ["POST"]},
                {"uri": "/devices/disown", "http_method": ["POST"]},
                {"uri": "/profile", "http_method": ["POST", "GET"]},
                {"uri": "/profile/devices", "http_method": ["DELETE", "POST", "PUT"]},
                {"uri": "/device/activationlock", "http_method": ["POST"]},
            ]
            doc.update(
                org_type=org.org_type,
                org_version=org.org_version,
                org_id=org.org_id,
                org_id_hash=org.org_id_hash,
            )
        return json_response(doc, call.now)

    # -- devices ----------------------------------------------------------------------------

    def _page_request(self, call: Call) -> tuple[str | None, int]:
        body = _json_body(call.body, empty={})
        if not isinstance(body, dict):
            raise ServiceError(400, "MALFORMED_REQUEST_BODY")
        cursor, limit = body.get("cursor"), body.get("limit")
        if cursor is not None and not isinstance(cursor, str):
            raise ServiceError(400, "MALFORMED_REQUEST_BODY")
        settings = self.sim.settings
        if limit is None:
            return cursor or None, settings.page_limit_default
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise ServiceError(400, "MALFORMED_REQUEST_BODY")
        # A larger limit is clamped to the advertised maximum, a smaller one raised to 1.
        return cursor or None, min(max(limit, 1), settings.page_limit_maximum)

    def _cursor(self, server: Server, text: str, now: float) -> Cursor:
        sim = self.sim
        cursor = sim.cursors.decode(text)
        if (
            cursor is None
            or cursor.server != server.ordinal
            or cursor.sequence > server.last_sequence
            or (cursor.kind == "fetch" and cursor.position > server.roster_end(cursor.sequence))
        ):
            raise ServiceError(400, "INVALID_CURSOR")
        age_ms = now * 1000 - cursor.issued_ms
        key = (cursor.kind, cursor.position, cursor.sequence, cursor.issued_ms)
        if (
            age_ms > sim.settings.cursor_max_age_seconds * 1000
            or cursor.issued_ms <= server.cursor_floor_ms
            or key in server.expired_cursors
        ):
            raise ServiceError(400, "EXPIRED_CURSOR")
        return cursor

    def _page(self, devices: list[str], cursor: Cursor, more: bool, now: float) -> Response:
        # One join and one encode: a page is ~300 kB and every extra copy shows in the bench.
        tail = (
            f'],"cursor":"{self.sim.cursors.encode(cursor)}",'
            f'"more_to_follow":{"true" if more else "false"},'
            f'"fetched_until":"{format_time(int(now))}"}}'
        )
        body = ",".join(devices).join(('{"devices":[', tail)).encode()
        return raw_json_response(body, now)

    def fetch_devices(self, call: Call) -> Response:
        """``POST /server/devices``: a snapshot of the server's devices, page by page."""
        server, now, version = call.server, call.now, call.version
        text, limit = self._page_request(call)
        if text is None:
            sequence, position = server.last_sequence, 0
        else:
            cursor = self._cursor(server, text, now)
            if cursor.kind == "sync":
                raise ServiceError(400, "EXHAUSTED_CURSOR")
            sequence, position = cursor.sequence, cursor.position
        end = server.roster_end(sequence)
        if text is not None and position >= end:
            raise ServiceError(400, "EXHAUSTED_CURSOR")
        devices: list[str] = []
        catalog, overlay, extra = server.catalog, server.overlay, server.roster_extra
        baseline = catalog.count

        def changed(serial: str, at: int) -> str | None:
            entry = overlay[serial]
            if entry.present and entry.roster_pos == at:
                return json.dumps(render_record(entry.record, version))
            return None

        def changed_baseline(index: int) -> str | None:
            return changed(catalog.serial(index), index)

        while position < end and len(devices) < limit:
            if position < baseline:
                stop = min(end, baseline, position + limit - len(devices))
                devices += catalog.render_span(
                    position, stop, version, server.baseline_changed, changed_baseline
                )
                position = stop
                continue
            serial = extra[position - baseline]
            if serial in overlay:
                rendered = changed(serial, position)
                if rendered is not None:
                    devices.append(rendered)
            position += 1
        next_cursor = Cursor("fetch", server.ordinal, position, sequence, _issue_ms(server, now))
        return self._page(devices, next_cursor, position < end, now)

    def sync_devices(self, call: Call) -> Response:
        """``POST /devices/sync``: the events after the cursor, oldest first."""
        server, now = call.server, call.now
        text, limit = self._page_request(call)
        if text is None:
            raise ServiceError(400, "CURSOR_REQUIRED")
        start = self._cursor(server, text, now).sequence
        batch = server.events[start : start + limit]
        devices = []
        for serial, op_type, op_date in batch:
            record = server.known(serial) or {"serial_number": serial}
            devices.append(json.dumps(render_record(record, call.version, (op_type, op_date))))
        sequence = start + len(batch)
        next_cursor = Cursor("sync", server.ordinal, 0, sequence, _issue_ms(server, now))
        return self._page(devices, next_cursor, sequence < server.last_sequence, now)

    def device_details(self, call: Call) -> Response:
        """``POST /devices``: details of the named serials (``NOT_FOUND`` if not on this server)."""
        serials = _serials(_json_body(call.body))
        if not serials:
            raise ServiceError(400, "DEVICE_ID_REQUIRED")
        found: dict[str, Any] = {}
        for serial in serials:
            record = call.server.current(serial)
            if record is None:
                found[serial] = {"response_status": "NOT_FOUND"}
            else:
                found[serial] = {
                    **render_record(record, call.version),
                    "response_status": "SUCCESS",
                }
        return json_response({"devices": found}, call.now)

    def disown_devices(self, call: Call) -> Response:
        """``POST /devices/disown``: release devices from the organisation (``deleted`` event)."""
        serials = _serials(_json_body(call.body))
        if not serials:
            raise ServiceError(400, "DEVICE_ID_REQUIRED")
        results: dict[str, str] = {}
        for serial in serials:
            if call.forced is not None:
                results[serial] = self._forced(call)
            elif serial in results:
                continue
            elif call.server.current(serial) is None:
                results[serial] = "NOT_ACCESSIBLE"
            else:
                call.server.remove(serial, int(call.now))
                results[serial] = "SUCCESS"
        return json_response({"devices": results}, call.now)

    # -- profiles ---------------------------------------------------------------------------

    def _forced(self, call: Call) -> str:
        forced = call.forced or "FAILED"
        return "FAILED" if forced == "THROTTLED" and call.version < 9 else forced

    def _assign(
        self, call: Call, profile_uuid: str, serials: list[str]
    ) -> tuple[dict[str, str], int | None]:
        """Assign the profile to each serial; per-serial answers and the longest wait asked."""
        server, now, settings = call.server, call.now, self.sim.settings
        results: dict[str, str] = {}
        wait: int | None = None
        for serial in serials:
            if serial in results:
                continue
            if call.forced is not None:
                results[serial] = self._forced(call)
                if call.forced == "THROTTLED":
                    wait = call.forced_retry_after or _DEFAULT_THROTTLE_SECONDS
                continue
            if server.current(serial) is None:
                results[serial] = "NOT_ACCESSIBLE"
                continue
            until = server.throttled.get(serial)
            if until is not None and until <= now:
                del server.throttled[serial]
                until = None
            if until is None and settings.assign_rate_max_devices:
                until = self._rate_limited(server, now)
            if until is not None:
                results[serial] = "THROTTLED" if call.version >= 9 else "FAILED"
                wait = max(wait or 0, math.ceil(until - now))
                continue
            remaining = server.failures.get(serial, 0)
            if remaining:
                if remaining == 1:
                    del server.failures[serial]
                else:
                    server.failures[serial] = remaining - 1
                results[serial] = "FAILED"
                continue
            changes = {
                "profile_status": "assigned",
                "profile_uuid": profile_uuid,
                "profile_assign_time": format_time(int(now)),
                "profile_push_time": None,
            }
            # Assumption (not documented by Apple): an assignment shows up as "modified".
            server.modify(serial, changes, int(now))
            results[serial] = "SUCCESS"
        return results, wait

    def _rate_limited(self, server: Server, now: float) -> float | None:
        """When the assignment-rate window ends if it is full, counting this device otherwise."""
        settings = self.sim.settings
        start, count = server.assign_window
        if now - start >= settings.assign_rate_window_seconds:
            start, count = now, 0
        if count >= settings.assign_rate_max_devices:
            server.assign_window = (start, count)
            return start + settings.assign_rate_window_seconds
        server.assign_window = (start, count + 1)
        return None

    def _assignment_answer(
        self, call: Call, profile_uuid: str, results: dict[str, str], wait: int | None
    ) -> Response:
        doc: dict[str, Any] = {"profile_uuid": profile_uuid, "devices": results}
        if wait is not None and call.version >= 10 and "THROTTLED" in results.values():
            doc["retry_after_seconds"] = max(wait, 1)
        return json_response(doc, call.now)

    def define_profile(self, call: Call) -> Response:
        """``POST /profile``: validate and store a profile, optionally assigning it."""
        profile, serials = validate_profile(_json_body(call.body), call.version)
        profile_uuid = self.sim.new_profile_uuid()
        call.server.profiles[profile_uuid] = profile
        results, wait = self._assign(call, profile_uuid, serials or [])
        return self._assignment_answer(call, profile_uuid, results, wait)

    def _profile_uuid(self, server: Server, value: Any) -> str:
        if value is None or value == "":
            raise ServiceError(400, "PROFILE_UUID_REQUIRED")
        if not isinstance(value, str):
            raise ServiceError(400, "MALFORMED_REQUEST_BODY")
        profile_uuid = value.upper()
        if profile_uuid not in server.profiles:
            raise ServiceError(404, "NOT_FOUND")
        return profile_uuid

    def get_profile(self, call: Call) -> Response:
        """``GET /profile?profile_uuid=``: the stored profile with its UUID."""
        profile_uuid = self._profile_uuid(call.server, call.query.get("profile_uuid"))
        return json_response(
            {**call.server.profiles[profile_uuid], "profile_uuid": profile_uuid}, call.now
        )

    def assign_profile(self, call: Call) -> Response:
        """``PUT``/``POST /profile/devices``: assign a defined profile to serials."""
        body = _json_body(call.body)
        if not isinstance(body, dict):
            raise ServiceError(400, "MALFORMED_REQUEST_BODY")
        profile_uuid = self._profile_uuid(call.server, body.get("profile_uuid"))
        results, wait = self._assign(call, profile_uuid, _serials(body))
        return self._assignment_answer(call, profile_uuid, results, wait)

    def remove_profile(self, call: Call) -> Response:
        """``DELETE /profile/devices``: clear the profile of serials (status ``removed``)."""
        serials = _serials(_json_body(call.body))
        server, now = call.server, int(call.now)
        results: dict[str, str] = {}
        for serial in serials:
            if call.forced is not None:
                results[serial] = self._forced(call)
            elif serial in results:
                continue
            elif server.current(serial) is None:
                results[serial] = "NOT_ACCESSIBLE"
            else:
                changes = {
                    "profile_status": "removed",
                    "profile_uuid": None,
                    "profile_assign_time": None,
                    "profile_push_time": None,
                }
                server.modify(serial, changes, now)
                results[serial] = "SUCCESS"
        return json_response({"devices": results}, call.now)

    # -- activation lock --------------------------------------------------------------------

    def activation_lock(self, call: Call) -> Response:
        """``POST /device/activationlock`` (protocol 2+): lock a device to the organisation."""
        if call.version < 2:
            raise ServiceError(404, "NOT_FOUND")
        body = _json_body(call.body)
        if not isinstance(body, dict) or not isinstance(body.get("device"), str):
            raise ServiceError(400, "MALFORMED_REQUEST_BODY")
        escrow_key, lost_message = body.get("escrow_key"), body.get("lost_message")
        if escrow_key is not None and not (
            isinstance(escrow_key, str)
            and len(escrow_key) == 64
            and all(c in "0123456789abcdefABCDEF" for c in escrow_key)
        ):
            raise ServiceError(400, "MALFORMED_REQUEST_BODY")
        if lost_message is not None and not isinstance(lost_message, str):
            raise ServiceError(400, "MALFORMED_REQUEST_BODY")
        serial = body["device"]
        entry = call.server.editable(serial)
        if entry is None:
            status = "NOT_ACCESSIBLE"
        elif entry.record.get("device_family") in ("AppleTV", "Vision"):
            status = "DEVICE_NOT_SUPPORTED"
        elif entry.locked:
            status = "DEVICE_ALREADY_LOCKED"
        else:
            entry.locked = True
            status = "SUCCESS"
        return json_response({"serial_number": serial, "response_status": status}, call.now)


def _issue_ms(server: Server, now: float) -> int:
    """The issue time of a new cursor of ``server``: now, or 1 ms after its previous one."""
    issued = max(int(now * 1000), server.last_cursor_ms + 1)
    server.last_cursor_ms = issued
    return issued
