"""Did the device finish ADE enrollment? MDM enrollment events and enrollment URL probes.

Apple tells adesync that a device got and downloaded its ADE profile; only the MDM server
knows whether the device then enrolled. This package takes the MDM's word for it (NanoMDM and
MicroMDM webhooks, adesync's own event format, imports), derives each device's
``enrollment_state`` and probes the enrollment URLs devices are sent to.
"""

from __future__ import annotations

from adesync.enrollment.checkin import CheckIn, decode_checkin
from adesync.enrollment.errors import InvalidEnrollmentData
from adesync.enrollment.importer import import_file, read_events
from adesync.enrollment.model import (
    EnrollmentEvent,
    EnrollmentState,
    EventKind,
    EventSource,
    RecordResult,
)
from adesync.enrollment.native import native_event
from adesync.enrollment.probe import ProbeResult, probe_profiles, probe_url
from adesync.enrollment.queries import Funnel, enrollment_funnel, enrollment_timeline
from adesync.enrollment.recorder import WebhookOutcome, record_events, record_webhook
from adesync.enrollment.webhooks import WebhookCheckIn, parse_webhook

__all__ = [
    "CheckIn",
    "EnrollmentEvent",
    "EnrollmentState",
    "EventKind",
    "EventSource",
    "Funnel",
    "InvalidEnrollmentData",
    "ProbeResult",
    "RecordResult",
    "WebhookCheckIn",
    "WebhookOutcome",
    "decode_checkin",
    "enrollment_funnel",
    "enrollment_timeline",
    "import_file",
    "native_event",
    "parse_webhook",
    "probe_profiles",
    "probe_url",
    "read_events",
    "record_events",
    "record_webhook",
]
