"""``adesync runs list``: the sync history, newest first."""

from __future__ import annotations

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from adesync.commands.common import iso, out, print_json, run
from adesync.runtime import open_runtime
from adesync.services.runs import DEFAULT_LIMIT, RunDocument, list_runs

runs_app = typer.Typer(help="Sync history: what each sync of each token did.", no_args_is_help=True)

_OUTCOME_COLOURS = {
    "ok": "green",
    "running": "cyan",
    "throttled": "yellow",
    "interrupted": "yellow",
    "error": "red",
}
# The table's counts, for an 80-column terminal (pages, assigned, trigger and durations are
# in --json).
_COUNTS = ("added", "modified", "deleted", "unchanged")
# Headers narrow enough for an 80-column terminal.
_HEADERS = {"modified": "changed", "deleted": "gone", "unchanged": "same"}


@runs_app.command("list")
def runs_list(
    token: str | None = typer.Option(None, "--token", help="Only this token's runs."),
    limit: int = typer.Option(DEFAULT_LIMIT, "--limit", min=1, help="At most this many runs."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array, nothing else."),
) -> None:
    """List sync runs, newest first (skipped syncs are not runs; --json has every field)."""

    async def go() -> list[RunDocument]:
        async with open_runtime() as rt:
            return await list_runs(rt.db, token, limit)

    runs = run(go())
    if as_json:
        print_json(runs)
        return
    if not runs:
        out.print("No sync runs yet.", highlight=False)
        return
    table = Table(title=f"{len(runs)} run(s), newest first", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("started UTC", no_wrap=True)
    table.add_column("token", overflow="fold", min_width=6)
    table.add_column("kind", no_wrap=True)
    table.add_column("outcome (error)", overflow="fold", min_width=len("interrupted"))
    for column in _COUNTS:
        table.add_column(_HEADERS.get(column, column), justify="right", no_wrap=True)
    for r in runs:
        colour = _OUTCOME_COLOURS.get(r["outcome"], "white")
        started = iso(r["started_at"]) or ""
        table.add_row(
            started[5:16].replace("T", " "),
            escape(r["token"]),
            r["kind"],
            f"[{colour}]{r['outcome']}[/]"
            + (f"\n[dim]{r['error_code']}[/]" if r["error_code"] else ""),
            *(str(r[column]) for column in _COUNTS),
        )
    out.print(table)
