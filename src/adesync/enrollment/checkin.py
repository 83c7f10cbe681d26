"""MDM check-in messages (Apple's ``Authenticate``, ``TokenUpdate``, ``CheckOut`` plists) as
MDM servers forward them: decoded with :mod:`plistlib`, checked, reduced to what enrollment
tracking needs."""

from __future__ import annotations

import base64
import binascii
import plistlib
import re
from dataclasses import dataclass
from typing import Any

from adesync.enrollment.errors import InvalidEnrollmentData
from adesync.text import storable

__all__ = ["CheckIn", "decode_base64", "decode_checkin", "normalise_serial"]

# Apple serial numbers are letters and digits (8 to 14 today); the column holds 64.
_SERIAL = re.compile(r"^[A-Z0-9]{1,64}$")
_MAX_ID = 64


@dataclass(frozen=True)
class CheckIn:
    """One check-in message. ``device_id`` is the UDID (or, for user enrollments, the
    EnrollmentID); ``user_channel`` is true for messages of a user's channel (they say nothing
    about the device's own enrollment)."""

    message_type: str
    device_id: str | None
    serial_number: str | None
    user_channel: bool


def normalise_serial(value: object, *, what: str = "serial_number") -> str:
    """A serial number in the form Apple lists it (upper case, letters and digits)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidEnrollmentData(f"{what} must be a non-empty string.")
    serial = value.strip().upper()
    if not _SERIAL.match(serial):
        raise InvalidEnrollmentData(
            f"{what} {value.strip()[:70]!r} is not a serial number (letters and digits only)."
        )
    return serial


def decode_base64(text: object, *, what: str) -> bytes:
    """Standard base64 (as Go's encoding/json writes a byte slice), strictly."""
    if not isinstance(text, str) or not text:
        raise InvalidEnrollmentData(f"{what} must be a base64 string.")
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidEnrollmentData(f"{what} is not valid base64.") from None


def _load_plist(raw: bytes, what: str) -> dict[str, Any]:
    try:
        document = plistlib.loads(raw)
    except Exception:
        # plistlib raises several unrelated types on garbage (InvalidFileException,
        # ExpatError, ValueError, ...); any of them means the same thing here.
        raise InvalidEnrollmentData(f"{what} is not a property list.") from None
    if not isinstance(document, dict):
        raise InvalidEnrollmentData(f"{what} is a property list but not a dictionary.")
    return document


def _identifier(document: dict[str, Any], key: str, what: str) -> str | None:
    value = document.get(key)
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value.strip()) > _MAX_ID
        or not storable(value)
    ):
        raise InvalidEnrollmentData(f"{what} has a {key} that is not an identifier.")
    return value.strip()


def decode_checkin(raw: bytes, *, what: str = "The check-in message") -> CheckIn:
    """Decode one check-in plist; InvalidEnrollmentData when it is not one."""
    document = _load_plist(raw, what)
    message_type = document.get("MessageType")
    if not isinstance(message_type, str) or not message_type:
        raise InvalidEnrollmentData(f"{what} has no MessageType.")
    device_id = _identifier(document, "UDID", what) or _identifier(document, "EnrollmentID", what)
    serial_value = document.get("SerialNumber")
    serial = None if serial_value is None else normalise_serial(serial_value, what="SerialNumber")
    user_channel = "UserID" in document or "EnrollmentUserID" in document
    return CheckIn(
        message_type=message_type,
        device_id=device_id,
        serial_number=serial,
        user_channel=user_channel,
    )
