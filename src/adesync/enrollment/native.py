"""adesync's own event format, for any MDM: ``{"serial_number", "event", "at"}``.

``event`` is ``authenticated``, ``enrolled`` or ``checked_out``; ``at`` is an ISO 8601 time
with its zone (``Z`` for UTC). The same serial, event and time is the same event, whether it
came through the API or an import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

from adesync.enrollment.checkin import normalise_serial
from adesync.enrollment.errors import InvalidEnrollmentData
from adesync.enrollment.model import EnrollmentEvent, EventKind, EventSource
from adesync.enrollment.recorder import CLOCK_TOLERANCE

__all__ = ["FIELDS", "native_event", "parse_time"]

FIELDS = ("serial_number", "event", "at")
_KINDS = ", ".join(kind.value for kind in EventKind)


def _say(where: str, text: str) -> InvalidEnrollmentData:
    """One sentence: ``where`` (``"Line 4: "``) and the problem, which names the field first
    (in the field's own spelling) or is a sentence of its own."""
    return InvalidEnrollmentData(f"{where}{text}")


def parse_time(value: object, *, where: str = "") -> datetime:
    """An ISO 8601 time that names its zone, as an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        raise _say(where, "at must be an ISO 8601 time such as 2025-01-31T09:00:00Z.")
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _say(
            where, f"at {text[:40]!r} is not an ISO 8601 time such as 2025-01-31T09:00:00Z."
        ) from None
    if moment.tzinfo is None:
        raise _say(where, f"at {text[:40]!r} has no time zone; add Z for UTC or an offset.")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise _say(where, f"at {text[:40]!r} is out of range.") from None


def _kind(value: object, where: str) -> EventKind:
    if isinstance(value, str):
        try:
            return EventKind(value.strip().lower())
        except ValueError:
            pass
    shown = repr(value)[:40]
    raise _say(where, f"event {shown} is not one of {_KINDS}.")


def _key(serial: str, kind: EventKind, at: datetime) -> str:
    text = f"native\n{serial}\n{kind.value}\n{at.isoformat()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def native_event(
    document: object, source: EventSource, now: datetime, *, where: str = ""
) -> EnrollmentEvent:
    """One event from a JSON object or CSV row; ``where`` (``"line 4: "``) prefixes errors."""
    if not isinstance(document, Mapping):
        raise _say(where, f"An event must be an object with {', '.join(FIELDS)}.")
    missing = [name for name in FIELDS if document.get(name) in (None, "")]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise _say(where, f"{', '.join(missing)} {verb} missing.")
    serial = normalise_serial(document["serial_number"], what=f"{where}serial_number")
    kind = _kind(document["event"], where)
    at = parse_time(document["at"], where=where)
    if at > now + CLOCK_TOLERANCE:
        raise _say(where, f"at {str(document['at'])[:40]} is in the future.")
    return EnrollmentEvent(
        kind=kind, at=at, source=source, key=_key(serial, kind, at), serial_number=serial
    )
