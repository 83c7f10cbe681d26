"""Scenario files (JSON or TOML): the organisations, servers, devices and faults to start with.

docs/simulator.md documents the format; ``examples/simulator-scenario.toml`` is a full example.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from adesync.errors import ConfigError
from adesync.simulator.answers import AdminError
from adesync.simulator.faults import DEPSIM_ENDPOINT_KEYS
from adesync.simulator.state import Simulator

__all__ = ["ScenarioError", "apply_scenario", "load_scenario"]

_TOP = {"seed", "devices", "settings", "faults", "orgs", "servers", *DEPSIM_ENDPOINT_KEYS}
_ORG = {
    "name",
    "domain",
    "email",
    "phone",
    "address",
    "org_type",
    "org_version",
    "org_id",
    "terms_pending",
    "servers",
}
_SERVER = {
    "name",
    "devices",
    "certificate",
    "p7m_out",
    "token_expiry",
    "admin_id",
    "revoked",
    "deleted",
    "add_devices",
    "faults",
    "throttle_serials",
    "fail_serials",
}
_FAULTS = {"scripts", "outage", "throttle", "delay_ms"}


class ScenarioError(ConfigError):
    """A scenario file that cannot be read or applied; the message names the file and the part."""

    code = "scenario_invalid"


def load_scenario(path: Path) -> dict[str, Any]:
    """Read and check the shape of a scenario file (``.toml`` or JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"Cannot read the scenario file {path}: {exc.strerror}.") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ScenarioError(f"The scenario file {path} is not valid: {exc}.") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"The scenario file {path} must hold an object (a table).")
    _check_keys(data, _TOP, f"{path}")
    for key in ("seed", "devices"):
        if key in data and (not isinstance(data[key], int) or isinstance(data[key], bool)):
            raise ScenarioError(f"{path}: {key} must be a whole number.")
    for i, org in enumerate(_list(data, "orgs", str(path)), 1):
        _check_keys(org, _ORG, f"{path}: org {i}")
        for j, server in enumerate(_list(org, "servers", f"{path}: org {i}"), 1):
            _check_keys(server, _SERVER, f"{path}: org {i} server {j}")
    for j, server in enumerate(_list(data, "servers", str(path)), 1):
        _check_keys(server, _SERVER, f"{path}: server {j}")
    return data


def _list(data: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ScenarioError(f"{where}: {key} must be a list of tables.")
    return value


def _check_keys(data: Any, allowed: set[str], where: str) -> None:
    if not isinstance(data, dict):
        raise ScenarioError(f"{where} must be a table.")
    unknown = set(data) - allowed
    if unknown:
        raise ScenarioError(f"{where} has unknown keys: {', '.join(sorted(unknown))}.")


def _apply_faults(sim: Simulator, faults: Any, server_uuid: str | None) -> None:
    _check_keys(faults, _FAULTS, "faults")
    sim.set_faults(
        server_uuid,
        scripts=faults.get("scripts"),
        outage=faults.get("outage", False),
        throttle=faults.get("throttle", False),
        delay_ms=faults.get("delay_ms"),
    )


def _server(sim: Simulator, spec: dict[str, Any], org_id: str | None, base: Path) -> dict[str, Any]:
    certificate_pem = None
    if "certificate" in spec:
        cert_path = base / str(spec["certificate"])
        try:
            certificate_pem = cert_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AdminError(f"cannot read the certificate {cert_path}: {exc.strerror}") from None
    if "p7m_out" in spec and certificate_pem is None:
        raise AdminError("p7m_out needs a certificate to encrypt the token to")
    download = sim.create_server(
        str(spec.get("name", "")),
        certificate_pem=certificate_pem,
        devices=spec.get("devices"),
        token_expiry=spec.get("token_expiry"),
        org_id=org_id,
        admin_id=spec.get("admin_id"),
    )
    uuid = download.server_uuid
    written = None
    if download.p7m is not None and "p7m_out" in spec:
        out = base / str(spec["p7m_out"])
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(download.p7m)
        except OSError as exc:
            raise AdminError(f"cannot write {out}: {exc.strerror}") from None
        written = str(out)
    if spec.get("add_devices"):
        sim.add_devices(uuid, count=spec["add_devices"])
    for serial_spec, method in (("throttle_serials", "throttle"), ("fail_serials", "fail")):
        if serial_spec in spec:
            entry = spec[serial_spec]
            if not isinstance(entry, dict):
                raise AdminError(f"{serial_spec} must be a table")
            serials = sim.devices(uuid, 0, int(entry.get("first", 0))) if "first" in entry else []
            names = list(entry.get("serials", [])) + [d["serial_number"] for d in serials]
            if method == "throttle":
                sim.throttle_serials(uuid, names, entry.get("retry_after_seconds", 60))
            else:
                sim.fail_serials(uuid, names, entry.get("times", 1))
    if "faults" in spec:
        _apply_faults(sim, spec["faults"], uuid)
    if spec.get("revoked"):
        sim.revoke_token(uuid)
    if spec.get("deleted"):
        sim.delete_server(uuid)
    return {"name": spec.get("name"), "server_uuid": uuid, "p7m": written}


def apply_scenario(sim: Simulator, scenario: dict[str, Any], base: Path) -> list[dict[str, Any]]:
    """Create what ``scenario`` declares in ``sim``; paths are relative to ``base``.

    Returns one ``{"name", "server_uuid", "p7m"}`` per server (``p7m``: the file written).
    """
    created: list[dict[str, Any]] = []
    where = "scenario"
    try:
        if "settings" in scenario:
            where = "settings"
            if not isinstance(scenario["settings"], dict):
                raise AdminError("settings must be a table")
            sim.configure(**scenario["settings"])
        depsim = {k: v for k, v in scenario.items() if k in DEPSIM_ENDPOINT_KEYS}
        if depsim:
            where = "depsim response lists"
            sim.set_faults(None, scripts=depsim)
        if "faults" in scenario:
            where = "faults"
            _apply_faults(sim, scenario["faults"], None)
        for i, org_spec in enumerate(scenario.get("orgs", []), 1):
            where = f"org {i}"
            fields = {k: v for k, v in org_spec.items() if k not in ("name", "servers")}
            org = sim.create_org(str(org_spec.get("name", "")), **fields)
            for j, spec in enumerate(org_spec.get("servers", []), 1):
                where = f"org {i} server {j}"
                created.append(_server(sim, spec, org.org_id, base))
        for j, spec in enumerate(scenario.get("servers", []), 1):
            where = f"server {j}"
            created.append(_server(sim, spec, None, base))
    except AdminError as error:
        raise ScenarioError(f"Scenario {where}: {error.message.rstrip('.')}.") from None
    except (TypeError, ValueError) as error:
        raise ScenarioError(f"Scenario {where}: a value has the wrong type ({error}).") from None
    return created
