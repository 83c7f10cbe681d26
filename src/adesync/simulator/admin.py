"""The simulator's own admin API under ``/_sim``: the ABM side of the world, and fault switches.

Requests and answers are JSON; a refused request answers ``{"error": "<one sentence>"}`` with a
4xx status and changes nothing. docs/simulator.md lists every endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adesync.simulator.answers import AdminError
from adesync.simulator.faults import ENDPOINTS
from adesync.simulator.state import Simulator, TokenDownload

__all__ = ["admin_routes"]

Handler = Callable[[Request], Awaitable[Any]]


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise AdminError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise AdminError("The request body must be a JSON object.")
    return body


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise AdminError(f"{name} must be a whole number.") from None
    if not 0 <= number <= maximum:
        raise AdminError(f"{name} must be between 0 and {maximum}.")
    return number


def _opt_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise AdminError(f"{name} must be a string.")
    return value


_SERVER_FIELDS = ("name", "devices", "token_expiry", "org_id", "admin_id")


def _p7m_file(download: TokenDownload) -> Response:
    if download.p7m is None:
        raise AdminError("format=p7m needs a certificate to encrypt the token to.")
    return Response(
        download.p7m,
        status_code=201,
        media_type="application/pkcs7-mime",
        headers={
            "Content-Disposition": f'attachment; filename="{download.filename}"',
            "X-Server-UUID": download.server_uuid,
        },
    )


def admin_routes(sim: Simulator) -> list[Route]:
    """The ``/_sim`` routes for ``sim`` (paths are relative to the mount point)."""

    def endpoint(handler: Handler, status: int = 200) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                result = await handler(request)
            except AdminError as error:
                return JSONResponse({"error": error.message}, status_code=error.status)
            if result is None:
                return Response(status_code=204)
            if isinstance(result, Response):
                return result
            return JSONResponse(result, status_code=status)

        return run

    def server_id(request: Request) -> str:
        return str(request.path_params["server_uuid"])

    async def health(request: Request) -> Any:
        return {"ok": True, "now": sim.describe()["now"]}

    async def state(request: Request) -> Any:
        return sim.describe()

    async def list_orgs(request: Request) -> Any:
        with sim.lock:
            return [org.describe() for org in sim.orgs.values()]

    async def create_org(request: Request) -> Any:
        body = await _body(request)
        name = body.get("name")
        if not isinstance(name, str):
            raise AdminError("An organisation needs a name.")
        extra = {
            k: body[k]
            for k in ("domain", "email", "phone", "address", "org_type", "org_version", "org_id")
            if body.get(k) is not None
        }
        for key, value in extra.items():
            if not isinstance(value, str):
                raise AdminError(f"{key} must be a string.")
        pending = body.get("terms_pending", False)
        if not isinstance(pending, bool):
            raise AdminError("terms_pending must be true or false.")
        return sim.create_org(name, terms_pending=pending, **extra).describe()

    async def set_terms(request: Request) -> Any:
        body = await _body(request)
        pending = body.get("pending", True)
        if not isinstance(pending, bool):
            raise AdminError("pending must be true or false.")
        sim.set_terms_pending(str(request.path_params["org_id"]), pending)
        return sim.org(str(request.path_params["org_id"])).describe()

    async def list_servers(request: Request) -> Any:
        return sim.describe()["servers"]

    async def create_server(request: Request) -> Any:
        raw = await request.body()
        if raw.lstrip().startswith(b"-----BEGIN"):
            # A bare PEM upload (curl --data-binary @cert.pem): the rest comes as query params.
            query = request.query_params
            body: dict[str, Any] = {k: query[k] for k in _SERVER_FIELDS if k in query}
            body["certificate_pem"] = raw.decode("utf-8", "replace")
            if "devices" in body:
                body["devices"] = _int_param(request, "devices", 0, 50_000_000)
        else:
            body = await _body(request)
        org_id = _opt_str(body, "org_id")
        org = body.get("org")
        if org is not None:
            if org_id is not None or not isinstance(org, dict):
                raise AdminError("Give either org_id or an org object, not both.")
            org_id = (await _create_org_from(org)).org_id
        devices = body.get("devices")
        if devices is not None and (not isinstance(devices, int) or isinstance(devices, bool)):
            raise AdminError("devices must be a whole number.")
        download = sim.create_server(
            str(body.get("name") or ""),
            certificate_pem=_opt_str(body, "certificate_pem"),
            devices=devices,
            token_expiry=_opt_str(body, "token_expiry"),
            org_id=org_id,
            admin_id=_opt_str(body, "admin_id"),
        )
        if request.query_params.get("format") == "p7m":
            return _p7m_file(download)
        return {**download.describe(), "org_id": sim.server(download.server_uuid).org.org_id}

    async def _create_org_from(org: dict[str, Any]) -> Any:
        name = org.get("name")
        if not isinstance(name, str):
            raise AdminError("The org object needs a name.")
        fields = {
            k: org[k]
            for k in ("domain", "email", "phone", "address", "org_type", "org_version", "org_id")
            if org.get(k) is not None
        }
        if not all(isinstance(v, str) for v in fields.values()):
            raise AdminError("Org fields must be strings.")
        return sim.create_org(name, **fields)

    async def show_server(request: Request) -> Any:
        with sim.lock:
            return sim.describe_server(sim.server(server_id(request)))

    async def delete_server(request: Request) -> Any:
        sim.delete_server(server_id(request))
        return None

    async def download_token(request: Request) -> Any:
        raw = await request.body()
        if raw.lstrip().startswith(b"-----BEGIN"):
            body: dict[str, Any] = {"certificate_pem": raw.decode("utf-8", "replace")}
            if "token_expiry" in request.query_params:
                body["token_expiry"] = request.query_params["token_expiry"]
        else:
            body = await _body(request)
        download = sim.download_token(
            server_id(request),
            certificate_pem=_opt_str(body, "certificate_pem"),
            token_expiry=_opt_str(body, "token_expiry"),
        )
        if download.p7m is None:
            raise AdminError("The server has no certificate; upload certificate_pem.", 409)
        if request.query_params.get("format") == "p7m":
            return _p7m_file(download)
        return download.describe()

    async def credentials(request: Request) -> Any:
        with sim.lock:
            server = sim.server(server_id(request))
            return {**server.token.payload(), "state": server.token.state}

    async def revoke(request: Request) -> Any:
        sim.revoke_token(server_id(request))
        return None

    async def list_devices(request: Request) -> Any:
        offset = _int_param(request, "offset", 0, 2**32)
        limit = _int_param(request, "limit", 100, 10_000)
        return sim.devices(server_id(request), offset, limit)

    async def show_device(request: Request) -> Any:
        record = sim.device(server_id(request), str(request.path_params["serial"]))
        if record is None:
            raise AdminError("That device is not assigned to this MDM server.", 404)
        return record

    async def add_devices(request: Request) -> Any:
        body = await _body(request)
        devices = body.get("devices")
        if devices is not None and not isinstance(devices, list):
            raise AdminError("devices must be a list of device objects.")
        serials = sim.add_devices(server_id(request), body.get("count", 0), devices)
        return {"serials": serials}

    async def modify_devices(request: Request) -> Any:
        body = await _body(request)
        devices = body.get("devices")
        if not isinstance(devices, list):
            raise AdminError("devices must be a list of changes with serial_number.")
        return {"serials": sim.modify_devices(server_id(request), devices)}

    async def pushed(request: Request) -> Any:
        body = await _body(request)
        return {"serials": sim.mark_pushed(server_id(request), body.get("serials", []))}

    async def throttle(request: Request) -> Any:
        body = await _body(request)
        sim.throttle_serials(
            server_id(request),
            body.get("serials", []),
            body.get("retry_after_seconds", 0),
        )
        return None

    async def fail(request: Request) -> Any:
        body = await _body(request)
        sim.fail_serials(server_id(request), body.get("serials", []), body.get("times", 1))
        return None

    async def expire_cursors(request: Request) -> Any:
        body = await _body(request)
        sim.expire_cursors(server_id(request), _opt_str(body, "cursor"))
        return None

    async def list_profiles(request: Request) -> Any:
        with sim.lock:
            server = sim.server(server_id(request))
            return [{**p, "profile_uuid": u} for u, p in server.profiles.items()]

    async def move(request: Request) -> Any:
        body = await _body(request)
        to_server = _opt_str(body, "to_server")
        if to_server is None:
            raise AdminError("to_server (a server UUID) is required.")
        moved = sim.move_devices(
            body.get("serials", []),
            to_server,
            op_type=str(body.get("op_type", "added")),
            from_server=_opt_str(body, "from_server"),
        )
        return {"serials": moved}

    async def get_faults(request: Request) -> Any:
        with sim.lock:
            return {
                "endpoints": ENDPOINTS,
                "global": sim.faults.describe(),
                "servers": {s.uuid: s.faults.describe() for s in sim.servers.values()},
            }

    async def set_faults(request: Request) -> Any:
        body = await _body(request)
        unknown = set(body) - {"server_uuid", "scripts", "outage", "throttle", "delay_ms"}
        if unknown:
            raise AdminError(f"Unknown fault keys: {sorted(unknown)}.")
        scripts = body.get("scripts")
        if scripts is not None and not isinstance(scripts, dict):
            raise AdminError("scripts must map endpoint names to lists of {count, response}.")
        server_uuid = _opt_str(body, "server_uuid")
        sim.set_faults(
            server_uuid,
            scripts=scripts,
            outage=body.get("outage", False),
            throttle=body.get("throttle", False),
            delay_ms=body.get("delay_ms"),
        )
        return sim.fault_plan(server_uuid).describe()

    async def clear_faults(request: Request) -> Any:
        sim.clear_faults(request.query_params.get("server_uuid"))
        return None

    async def get_settings(request: Request) -> Any:
        with sim.lock:
            return sim.settings.describe()

    async def patch_settings(request: Request) -> Any:
        sim.configure(**await _body(request))
        return await get_settings(request)

    async def expire_sessions(request: Request) -> Any:
        sim.expire_sessions()
        return None

    server_path = "/servers/{server_uuid}"
    return [
        Route("/health", endpoint(health), methods=["GET"]),
        Route("/state", endpoint(state), methods=["GET"]),
        Route("/orgs", endpoint(list_orgs), methods=["GET"]),
        Route("/orgs", endpoint(create_org, 201), methods=["POST"]),
        Route("/orgs/{org_id}/terms", endpoint(set_terms), methods=["PUT", "POST"]),
        Route("/servers", endpoint(list_servers), methods=["GET"]),
        Route("/servers", endpoint(create_server, 201), methods=["POST"]),
        Route(server_path, endpoint(show_server), methods=["GET"]),
        Route(server_path, endpoint(delete_server), methods=["DELETE"]),
        Route(f"{server_path}/token", endpoint(download_token, 201), methods=["POST"]),
        Route(f"{server_path}/credentials", endpoint(credentials), methods=["GET"]),
        Route(f"{server_path}/revoke", endpoint(revoke), methods=["POST"]),
        Route(f"{server_path}/devices", endpoint(list_devices), methods=["GET"]),
        Route(f"{server_path}/devices", endpoint(add_devices, 201), methods=["POST"]),
        Route(f"{server_path}/devices", endpoint(modify_devices), methods=["PATCH"]),
        Route(f"{server_path}/devices/pushed", endpoint(pushed), methods=["POST"]),
        Route(f"{server_path}/devices/throttle", endpoint(throttle), methods=["POST"]),
        Route(f"{server_path}/devices/fail", endpoint(fail), methods=["POST"]),
        Route(f"{server_path}/devices/{{serial}}", endpoint(show_device), methods=["GET"]),
        Route(f"{server_path}/cursors/expire", endpoint(expire_cursors), methods=["POST"]),
        Route(f"{server_path}/profiles", endpoint(list_profiles), methods=["GET"]),
        Route("/devices/move", endpoint(move), methods=["POST"]),
        Route("/faults", endpoint(get_faults), methods=["GET"]),
        Route("/faults", endpoint(set_faults), methods=["POST", "PUT"]),
        Route("/faults", endpoint(clear_faults), methods=["DELETE"]),
        Route("/settings", endpoint(get_settings), methods=["GET"]),
        Route("/settings", endpoint(patch_settings), methods=["PATCH", "PUT"]),
        Route("/sessions/expire", endpoint(expire_sessions), methods=["POST"]),
    ]
