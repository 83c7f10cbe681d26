"""Tables of the enrollment feature: what the MDM servers report, UDID to serial, URL probes.

The feature also adds columns to ``devices`` (owned by sync): the derived ``enrollment_state``
and the time of each MDM step, so listings and filters read them without a join. They are
appended here, on the same ``Table`` object, so the sync module needs no knowledge of them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from adesync.store.tables import metadata
from adesync.store.tables_sync import devices
from adesync.store.types import UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")

# One step of one device's MDM enrollment, as an MDM server (webhook), a script (API) or an
# import reported it. ``serial_number`` is null while only the UDID is known (a TokenUpdate
# from a device whose Authenticate adesync never saw); it is filled in when the UDID is mapped.
# ``event_key`` makes recording idempotent: the same report twice has the same key.
enrollment_events = Table(
    "enrollment_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("serial_number", String(64), nullable=True),
    Column("udid", String(64), nullable=True),
    Column("event", String(16), nullable=False),  # authenticated | enrolled | checked_out
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(16), nullable=False),  # nanomdm | micromdm | api | import
    Column("event_key", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("event_key"),
    Index("ix_enrollment_events_serial", "serial_number", "event", "at"),
    Index("ix_enrollment_events_udid", "udid"),
    Index("ix_enrollment_events_received", "received_at"),
)

# The serial number each MDM device identifier (UDID, or EnrollmentID) belongs to, learnt from
# Authenticate check-ins: later messages (TokenUpdate, CheckOut) carry only the UDID.
mdm_devices = Table(
    "mdm_devices",
    metadata,
    Column("udid", String(64), primary_key=True),
    Column("serial_number", String(64), nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Index("ix_mdm_devices_serial_number", "serial_number"),
)

# The latest HTTPS probe of each enrollment URL (with the anchors its profile trusts).
# ``probe_key`` is a hash of the URL and the anchor certificates: the same URL trusted
# differently by two profiles is probed once per trust.
enrollment_url_probes = Table(
    "enrollment_url_probes",
    metadata,
    Column("probe_key", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("probed_at", UTCDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error_kind", String(16), nullable=True),  # connect | timeout | tls | http_5xx | url
    Column("error", String(255), nullable=True),
    # The first failed probe of the current run of failures (null while the URL answers).
    Column("failing_since", UTCDateTime, nullable=True),
)

# Columns on ``devices``: the state derived from the events and Apple's profile status, and
# the latest time of each MDM step.
for _column in (
    Column("enrollment_state", String(16), nullable=True),
    Column("mdm_authenticated_at", UTCDateTime, nullable=True),
    Column("mdm_enrolled_at", UTCDateTime, nullable=True),
    Column("mdm_checked_out_at", UTCDateTime, nullable=True),
):
    if _column.name not in devices.c:
        devices.append_column(_column)
if "ix_devices_enrollment_state" not in {index.name for index in devices.indexes}:
    # State first: the periodic catch-up looks for states alone, the device list for state
    # and token.
    Index("ix_devices_enrollment_state", devices.c.enrollment_state, devices.c.token_id)

__all__ = ["enrollment_events", "enrollment_url_probes", "mdm_devices"]
