"""``adesync devices list`` and ``adesync devices import-enrollments``."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from adesync.commands.common import iso, out, print_json, run
from adesync.commands.enrollment import check_enrollment_state, import_enrollments
from adesync.runtime import open_runtime
from adesync.services.tokens import OptionInvalid
from adesync.sync.queries import PROFILE_STATUSES, DeviceFilter, list_devices

devices_app = typer.Typer(help="Devices synced from ABM/ASM.", no_args_is_help=True)
devices_app.command("import-enrollments")(import_enrollments)


@devices_app.command("list")
def devices_list(
    token: str | None = typer.Option(None, "--token", help="Only this token's devices."),
    profile_status: str | None = typer.Option(
        None, "--profile-status", help="empty, assigned, pushed or removed."
    ),
    include_deleted: bool = typer.Option(False, "--deleted", help="Include deleted devices."),
    serial: str | None = typer.Option(None, "--serial", help="Serial numbers containing this."),
    enrollment_state: str | None = typer.Option(
        None,
        "--enrollment-state",
        help="not_contacted, pushed, enrolled, checked_out or failed.",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array, nothing else."),
) -> None:
    """List devices (all matching ones unless --limit)."""

    check_enrollment_state(enrollment_state)
    if profile_status is not None and profile_status not in PROFILE_STATUSES:
        raise OptionInvalid(
            "--profile-status", profile_status, f"one of {', '.join(PROFILE_STATUSES)}"
        )

    async def go() -> list[dict[str, Any]]:
        async with open_runtime() as rt:
            if token is not None:
                from adesync.sync.service import token_ids_by_name

                await token_ids_by_name(rt.db, [token])
            filters = DeviceFilter(
                token=token,
                profile_status=profile_status,
                deleted=None if include_deleted else False,
                serial_contains=serial,
                enrollment_state=enrollment_state,
            )
            return await list_devices(rt.db, filters, limit=limit)

    rows = run(go())
    for row in rows:
        row.pop("id", None)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} device(s)")
    for column in (
        "serial_number",
        "token",
        "model",
        "os",
        "profile_status",
        "enrollment_state",
        "assigned",
        "deleted",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["serial_number"],
            row["token"],
            row["model"] or "",
            row["os"] or "",
            row["profile_status"] or "",
            row["enrollment_state"] or "",
            iso(row["device_assigned_date"]) or "",
            "yes" if row["deleted"] else "",
        )
    out.print(table)
