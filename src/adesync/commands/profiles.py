"""``adesync profiles define|list|assign|set-default|remove``: the profile services, worded for
the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from adesync.commands.common import iso, out, print_json, run
from adesync.config import Settings
from adesync.errors import AdesyncError
from adesync.runtime import open_runtime
from adesync.services.profiles import ProfileRecord, ProfileService, RemoveResult
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.sync.profiles import parse_profile_file
from adesync.sync.service import SyncService
from adesync.wiring import install_evaluation

profiles_app = typer.Typer(help="ADE enrollment profiles.", no_args_is_help=True)


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AdesyncError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if len(data) > 256 * 1024:
        raise AdesyncError(f"{path} is larger than 256 KiB; a profile is far smaller.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise AdesyncError(f"{path} is not UTF-8 text.") from None


def _service(db: Database, box: SecretBox, settings: Settings) -> ProfileService:
    # A change re-evaluates the token's health: its transitions go to the notify outbox.
    install_evaluation()
    return ProfileService(SyncService(db, box, settings))


def _serials(serials: str) -> list[str]:
    text = sys.stdin.read() if serials == "-" else _read(Path(serials))
    wanted = [s.strip() for s in text.replace(",", "\n").splitlines() if s.strip()]
    if not wanted:
        raise AdesyncError("No serial numbers given.")
    return wanted


@profiles_app.command("define")
def define(
    token: str = typer.Option(..., "--token", help="The token whose MDM server gets it."),
    file: Path = typer.Option(..., "--file", help="Profile JSON (Apple's profile fields)."),
    default: bool = typer.Option(False, "--default", help="Make it the token's default."),
) -> None:
    """Define a profile at Apple (validated here first)."""
    definition = parse_profile_file(_read(file))

    async def go() -> tuple[ProfileRecord, int]:
        async with open_runtime() as rt:
            service = _service(rt.db, rt.box, rt.settings)
            return await service.define(token, definition, default=default)

    record, assigned = run(go())
    out.print(f"Defined profile {record.profile_uuid} ({record.profile_name}) for {token}.")
    if default:
        out.print(f"It is the default now; Apple accepted it for {assigned} device(s).")


@profiles_app.command("list")
def list_profiles(
    token: str | None = typer.Option(None, "--token"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array, nothing else."),
) -> None:
    """List the profiles defined through adesync."""

    async def go() -> list[ProfileRecord]:
        async with open_runtime() as rt:
            return await ProfileService(SyncService(rt.db, rt.box, rt.settings)).list(token)

    records = run(go())
    if as_json:
        print_json([r.as_json() for r in records])
        return
    table = Table(title="Profiles")
    for column in ("token", "profile_uuid", "profile_name", "url", "default", "defined_at"):
        table.add_column(column)
    for r in records:
        table.add_row(
            r.token,
            r.profile_uuid,
            r.profile_name,
            r.url,
            "yes" if r.is_default else "",
            iso(r.defined_at) or "",
        )
    out.print(table)


@profiles_app.command("assign")
def assign(
    token: str = typer.Option(..., "--token"),
    profile: str = typer.Option(..., "--profile", help="Profile UUID."),
    serials: str = typer.Option(..., "--serials", help="File of serial numbers, or - for stdin."),
) -> None:
    """Assign a profile to the listed serial numbers (one per line or comma-separated)."""
    wanted = _serials(serials)

    async def go() -> int:
        async with open_runtime() as rt:
            service = _service(rt.db, rt.box, rt.settings)
            return await service.assign(token, profile, wanted)

    accepted = run(go())
    out.print(f"Apple accepted {accepted} of {len(wanted)} serial number(s).")
    if accepted < len(wanted):
        out.print("`adesync devices list --token ... --json` and the console show each result.")


@profiles_app.command("set-default")
def set_default(
    token: str = typer.Option(..., "--token"),
    profile: str = typer.Option(..., "--profile", help="Profile UUID."),
) -> None:
    """Make a profile the token's default and re-assign devices that had the old one or none."""

    async def go() -> int:
        async with open_runtime() as rt:
            service = _service(rt.db, rt.box, rt.settings)
            return await service.set_default(token, profile)

    assigned = run(go())
    out.print(f"Default profile of {token} is {profile}; Apple accepted {assigned} device(s).")


@profiles_app.command("remove")
def remove(
    token: str = typer.Option(..., "--token"),
    serials: str = typer.Option(..., "--serials", help="File of serial numbers, or - for stdin."),
) -> None:
    """Remove the profile from the listed serial numbers at Apple."""
    wanted = _serials(serials)

    async def go() -> RemoveResult:
        async with open_runtime() as rt:
            return await _service(rt.db, rt.box, rt.settings).remove(token, wanted)

    result = run(go())
    out.print(f"Apple removed the profile from {result.removed} of {len(wanted)} serial number(s).")
    for serial, status in sorted(result.devices.items()):
        if status != "SUCCESS":
            out.print(f"{serial}: {status}", highlight=False)
