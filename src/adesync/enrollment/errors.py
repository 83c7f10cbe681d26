"""The errors of enrollment-event ingestion: one clear sentence each, nothing stored."""

from __future__ import annotations

from adesync.errors import AdesyncError

__all__ = ["InvalidEnrollmentData"]


class InvalidEnrollmentData(AdesyncError):
    """A webhook body, an event or an import file that cannot be recorded (not JSON, not
    base64, not a plist, no serial number, an unknown event, a time without a zone, ...)."""

    code = "invalid_enrollment_event"
    http_status = 422
