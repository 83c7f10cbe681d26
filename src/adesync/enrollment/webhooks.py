"""The webhook events of NanoMDM and MicroMDM, turned into check-ins adesync records.

Both servers POST one JSON event per check-in: ``topic`` (``mdm.Authenticate``,
``mdm.TokenUpdate``, ``mdm.CheckOut``, and others adesync ignores), ``created_at``, an optional
``event_id``, and ``checkin_event`` with ``udid`` and ``raw_payload`` (the device's plist,
base64). NanoMDM adds ``enrollment_id`` and, on TokenUpdate, ``token_update_tally`` (1 for the
TokenUpdate that completes an enrollment).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adesync.enrollment.checkin import CheckIn, decode_base64, decode_checkin
from adesync.enrollment.errors import InvalidEnrollmentData
from adesync.enrollment.model import EventKind, EventSource
from adesync.text import storable_document

__all__ = ["TOPICS", "WebhookCheckIn", "parse_webhook"]

# The check-in topics that mark enrollment steps, and the MessageType each carries.
TOPICS: dict[str, tuple[str, EventKind]] = {
    "mdm.Authenticate": ("Authenticate", EventKind.AUTHENTICATED),
    "mdm.TokenUpdate": ("TokenUpdate", EventKind.ENROLLED),
    "mdm.CheckOut": ("CheckOut", EventKind.CHECKED_OUT),
}
# Go writes an unset time.Time as its zero value.
_GO_ZERO_YEAR = 1


@dataclass(frozen=True)
class WebhookCheckIn:
    """A check-in event from an MDM webhook. ``kind`` is ``None`` for topics that say
    nothing about enrollment (``checkin`` is then ``None`` too); ``created_at`` is ``None``
    when the server sent none; ``key`` is the same for the same event sent twice."""

    source: EventSource
    topic: str
    kind: EventKind | None
    created_at: datetime | None
    udid: str | None
    token_update_tally: int | None
    checkin: CheckIn | None
    key: str


def _object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise InvalidEnrollmentData("The webhook body is not JSON.") from None
    if not isinstance(document, dict):
        raise InvalidEnrollmentData("The webhook body is not a JSON object.")
    if not storable_document(document):
        raise InvalidEnrollmentData(
            "The webhook body holds a NUL character or a lone surrogate, which cannot be stored."
        )
    return document


def _created_at(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidEnrollmentData("created_at must be a date and time string.")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEnrollmentData(f"created_at {value[:40]!r} is not a date and time.") from None
    if moment.tzinfo is None:
        raise InvalidEnrollmentData("created_at has no time zone.")
    if moment.year <= _GO_ZERO_YEAR:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidEnrollmentData(f"created_at {value[:40]!r} is out of range.") from None


def _tally(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidEnrollmentData("token_update_tally must be a whole number.")
    return value


def _key(source: EventSource, topic: str, document: dict[str, Any], raw: bytes) -> str:
    digest = hashlib.sha256()
    for part in (source.value, topic, document.get("event_id"), document.get("created_at")):
        digest.update(str(part or "").encode("utf-8") + b"\n")
    digest.update(raw)
    return digest.hexdigest()


def parse_webhook(body: bytes, source: EventSource) -> WebhookCheckIn:
    """Parse and check one webhook event; InvalidEnrollmentData says what is wrong with it."""
    document = _object(body)
    topic = document.get("topic")
    if not isinstance(topic, str) or not topic:
        raise InvalidEnrollmentData("The webhook event has no topic.")
    created_at = _created_at(document.get("created_at"))
    if topic not in TOPICS:
        return WebhookCheckIn(source, topic, None, created_at, None, None, None, "")
    expected_type, kind = TOPICS[topic]
    event = document.get("checkin_event")
    if not isinstance(event, dict):
        raise InvalidEnrollmentData(f"The {topic} event has no checkin_event object.")
    raw = decode_base64(event.get("raw_payload"), what="checkin_event.raw_payload")
    checkin = decode_checkin(raw, what="checkin_event.raw_payload")
    if checkin.message_type != expected_type:
        raise InvalidEnrollmentData(
            f"The {topic} event carries a {checkin.message_type[:40]} message, not {expected_type}."
        )
    if (
        kind is EventKind.AUTHENTICATED
        and checkin.serial_number is None
        and not checkin.user_channel
    ):
        raise InvalidEnrollmentData(
            "The Authenticate message has no SerialNumber, so adesync cannot tell which "
            "device it is."
        )
    envelope_udid = event.get("udid") or event.get("enrollment_id")
    udid = checkin.device_id or (envelope_udid if isinstance(envelope_udid, str) else None)
    if udid is not None and len(udid) > 64:
        raise InvalidEnrollmentData("checkin_event.udid is not an identifier.")
    return WebhookCheckIn(
        source=source,
        topic=topic,
        kind=kind,
        created_at=created_at,
        udid=udid,
        token_update_tally=_tally(event.get("token_update_tally")),
        checkin=checkin,
        key=_key(source, topic, document, raw),
    )
