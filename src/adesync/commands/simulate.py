"""``adesync simulate``: run the simulator of Apple's ADE service on a local port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from adesync.errors import AdesyncError, ConfigError

__all__ = ["simulate"]

DEFAULT_DEVICES = 1000
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _instructions(base_url: str, made: list[dict[str, Any]], devices: int) -> str:
    lines = [f"adesync simulator listening on {base_url} ({devices} devices per new server)", ""]
    for server in made:
        lines.append(f"  MDM server {server['name']!r}: {server['server_uuid']}")
        if server.get("p7m"):
            lines.append(
                f"    add its token: adesync tokens add {server['name']} --p7m {server['p7m']} "
                f"--dep-url {base_url}"
            )
    if made:
        lines.append("")
    lines += [
        "Connect a token to it:",
        "  1. adesync tokens keypair NAME --out NAME.pem",
        "  2. create an MDM server for that certificate and download its token:",
        f"     curl -s -X POST '{base_url}/_sim/servers?name=NAME&format=p7m' \\",
        "          --data-binary @NAME.pem -o NAME.p7m",
        "     (or start the simulator with --server NAME --certificate NAME.pem",
        "      --p7m-out NAME.p7m)",
        f"  3. adesync tokens add NAME --p7m NAME.p7m --dep-url {base_url}",
        "",
        f"State: {base_url}/_sim/state; admin API: docs/simulator.md. Ctrl-C stops.",
    ]
    return "\n".join(lines)


def simulate(
    port: int = typer.Option(8080, "--port", "-p", help="TCP port (0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    devices: int | None = typer.Option(
        None, "--devices", "-n", help=f"Devices per new server (default {DEFAULT_DEVICES})."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed for serials, UUIDs, credentials."),
    scenario: Path | None = typer.Option(
        None, "--scenario", help="Scenario file (JSON or TOML) to start from."
    ),
    server: str | None = typer.Option(
        None, "--server", help="Create an MDM server of this name at start."
    ),
    certificate: Path | None = typer.Option(
        None, "--certificate", help="PEM certificate for --server (from `adesync tokens keypair`)."
    ),
    p7m_out: Path | None = typer.Option(
        None, "--p7m-out", help="Write --server's token file (.p7m) here."
    ),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
) -> None:
    """Run a simulator of Apple's ADE service (like Apple's depsim) and print how to use it."""
    from adesync.simulator import Simulator, apply_scenario, load_scenario
    from adesync.simulator.answers import AdminError
    from adesync.simulator.serve import bind, serve

    if (certificate is not None or p7m_out is not None) and server is None:
        raise ConfigError("--certificate and --p7m-out need --server NAME.")
    if p7m_out is not None and certificate is None:
        raise ConfigError("--p7m-out needs --certificate, the certificate to encrypt the token to.")
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"--log-level must be one of: {', '.join(LOG_LEVELS)}.")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port.")
    data = load_scenario(scenario) if scenario is not None else {}
    count = devices if devices is not None else data.get("devices", DEFAULT_DEVICES)
    try:
        sim = Simulator(devices=count, seed=seed if seed is not None else data.get("seed", 0))
    except AdminError as error:
        raise ConfigError(f"--devices: {error.message}") from None
    made = apply_scenario(sim, data, scenario.parent) if scenario is not None else []
    if server is not None:
        made.append(_create_server(sim, server, certificate, p7m_out))
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise AdesyncError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    print(_instructions(f"http://{shown}:{bound[1]}", made, count), flush=True)
    serve(sim, sock, log_level=log_level)


def _create_server(
    sim: Any, name: str, certificate: Path | None, p7m_out: Path | None
) -> dict[str, Any]:
    from adesync.simulator.answers import AdminError

    pem = None
    if certificate is not None:
        try:
            pem = certificate.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Cannot read the certificate {certificate}: {exc}.") from None
    try:
        download = sim.create_server(name, certificate_pem=pem)
    except AdminError as error:
        raise ConfigError(f"--server {name}: {error.message}") from None
    written = None
    if p7m_out is not None and download.p7m is not None:
        try:
            p7m_out.write_bytes(download.p7m)
        except OSError as exc:
            raise AdesyncError(f"Cannot write {p7m_out}: {exc.strerror}.") from None
        written = str(p7m_out)
    return {"name": name, "server_uuid": download.server_uuid, "p7m": written}
