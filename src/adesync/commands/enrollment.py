"""``adesync devices import-enrollments FILE`` and the ``--enrollment-state`` check of
``adesync devices list`` (registered in :mod:`adesync.commands.devices`)."""

from __future__ import annotations

from pathlib import Path

import typer

from adesync.commands.common import out, print_json, run
from adesync.enrollment.errors import InvalidEnrollmentData
from adesync.enrollment.model import EnrollmentState, RecordResult
from adesync.runtime import open_runtime
from adesync.store.types import utcnow

__all__ = ["check_enrollment_state", "import_enrollments"]

_STATES = ", ".join(state.value for state in EnrollmentState)


def check_enrollment_state(value: str | None) -> None:
    """Refuse an ``--enrollment-state`` that is no state (instead of listing nothing)."""
    if value is not None and value not in {state.value for state in EnrollmentState}:
        raise InvalidEnrollmentData(
            f"--enrollment-state {value!r} is not one of {_STATES}.", code="invalid_option"
        )


def import_enrollments(
    file: Path = typer.Argument(
        ...,
        help="CSV with a header naming serial_number, event and at; or JSON: an array of "
        "{serial_number, event, at}.",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Record MDM enrollment events from a file (authenticated, enrolled, checked_out).

    The whole file is checked first: one bad row and nothing is recorded. Importing the same
    events again changes nothing. Serial numbers no token lists yet are kept and matched when
    their device syncs.
    """
    from adesync.enrollment.importer import read_events
    from adesync.enrollment.recorder import record_events

    now = utcnow()
    events = read_events(file, now)

    async def go() -> RecordResult:
        async with open_runtime() as rt:
            return await record_events(rt.db, events, now)

    result = run(go())
    if as_json:
        print_json(result.to_dict())
        return
    out.print(
        f"Recorded {result.recorded} enrollment event(s) from {file.name}; "
        f"{result.duplicates} already known.",
        highlight=False,
    )
    if result.unknown_serials:
        out.print(
            f"{result.unknown_serials} serial number(s) are not on any token yet; their events "
            "are kept and apply when the devices sync.",
            highlight=False,
        )
