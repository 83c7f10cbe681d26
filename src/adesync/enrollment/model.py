"""The enrollment vocabulary, defined once for the API, CLI, console and rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "EnrollmentEvent",
    "EnrollmentState",
    "EventKind",
    "EventSource",
    "RecordResult",
]


class EventKind(StrEnum):
    """A step of MDM enrollment that an MDM server reports: the device authenticated
    (``Authenticate``), enrolled (its first ``TokenUpdate``) or left MDM (``CheckOut``)."""

    AUTHENTICATED = "authenticated"
    ENROLLED = "enrolled"
    CHECKED_OUT = "checked_out"


class EventSource(StrEnum):
    """Who reported an event."""

    NANOMDM = "nanomdm"
    MICROMDM = "micromdm"
    API = "api"
    IMPORT = "import"


class EnrollmentState(StrEnum):
    """Where a device is on its way into MDM, from Apple's profile status and the events.

    ``not_contacted``: never downloaded its ADE profile; ``pushed``: downloaded it (or
    authenticated within the last hour) but has not enrolled; ``enrolled``: its first
    TokenUpdate arrived; ``checked_out``: it left MDM; ``failed``: it authenticated but no
    TokenUpdate followed within an hour.
    """

    NOT_CONTACTED = "not_contacted"
    PUSHED = "pushed"
    ENROLLED = "enrolled"
    CHECKED_OUT = "checked_out"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class EnrollmentEvent:
    """One event to record. ``serial_number`` is ``None`` when only the UDID is known;
    ``key`` is what makes recording idempotent (the same report has the same key)."""

    kind: EventKind
    at: datetime
    source: EventSource
    key: str
    serial_number: str | None = None
    udid: str | None = None


@dataclass
class RecordResult:
    """What recording did: events stored, repeats recognised, serial numbers not on any token
    yet (kept, and matched when a sync brings the device)."""

    recorded: int = 0
    duplicates: int = 0
    unknown_serials: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "recorded": self.recorded,
            "duplicates": self.duplicates,
            "unknown_serials": self.unknown_serials,
        }
