"""Tables for devices, profiles, assignments, sync runs and worker heartbeats (sync issue)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from adesync.store.tables import metadata
from adesync.store.types import UTCDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# A device Apple lists for a token's MDM server, with Apple's fields as last seen. A device
# Apple reports deleted (or a full fetch no longer returns) stays, with ``deleted`` set.
devices = Table(
    "devices",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_id", Integer, ForeignKey("tokens.id", ondelete="CASCADE"), nullable=False),
    Column("serial_number", String(64), nullable=False),
    Column("model", String(128), nullable=True),
    Column("description", String(255), nullable=True),
    Column("color", String(64), nullable=True),
    Column("asset_tag", String(128), nullable=True),
    Column("os", String(32), nullable=True),
    Column("device_family", String(32), nullable=True),
    Column("profile_status", String(16), nullable=True),
    Column("profile_uuid", String(64), nullable=True),
    Column("profile_assign_time", UTCDateTime, nullable=True),
    Column("profile_push_time", UTCDateTime, nullable=True),
    Column("device_assigned_date", UTCDateTime, nullable=True),
    Column("device_assigned_by", String(255), nullable=True),
    Column("mdm_migration_deadline", UTCDateTime, nullable=True),
    Column("last_op_type", String(16), nullable=True),
    Column("last_op_date", UTCDateTime, nullable=True),
    Column("deleted", Boolean, nullable=False, server_default=false()),
    Column("deleted_at", UTCDateTime, nullable=True),
    # The start time of the full fetch that last returned this device (see tokens.fetch_started_at).
    Column("seen_in_fetch", UTCDateTime, nullable=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Serial first: the key also serves look-ups by serial alone (MDM events, the console).
    UniqueConstraint("serial_number", "token_id"),
    Index("ix_devices_token_state", "token_id", "deleted", "profile_status"),
)

# Enrollment profiles defined through adesync (Apple keeps no list of them).
profiles = Table(
    "profiles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_id", Integer, ForeignKey("tokens.id", ondelete="CASCADE"), nullable=False),
    Column("profile_uuid", String(64), nullable=False),
    Column("profile_name", String(255), nullable=False),
    Column("url", Text, nullable=False),
    Column("definition", Text, nullable=False),  # the JSON sent to Apple
    Column("defined_at", UTCDateTime, nullable=False),
    UniqueConstraint("token_id", "profile_uuid"),
)

# The latest assignment attempt per device: Apple's per-serial answer and when to try again.
assignments = Table(
    "assignments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_id", Integer, ForeignKey("tokens.id", ondelete="CASCADE"), nullable=False),
    Column("serial_number", String(64), nullable=False),
    Column("profile_uuid", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # SUCCESS NOT_ACCESSIBLE FAILED THROTTLED
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("last_attempt_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    UniqueConstraint("token_id", "serial_number"),
    Index("ix_assignments_token_status", "token_id", "status"),
)

# What happened to a device over time: sync operations and assignment answers.
device_history = Table(
    "device_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_id", Integer, ForeignKey("tokens.id", ondelete="CASCADE"), nullable=False),
    Column("serial_number", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(16), nullable=False),  # op | assignment
    Column("detail", String(32), nullable=False),  # op_type or assignment status
    Column("profile_uuid", String(64), nullable=True),
    Index("ix_device_history_serial", "token_id", "serial_number", "at"),
)

# One row per sync of one token.
sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_id", Integer, ForeignKey("tokens.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(8), nullable=False),  # fetch | sync
    Column("trigger", String(16), nullable=False),  # schedule | manual | add
    Column("worker", String(128), nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("duration_ms", Integer, nullable=True),
    Column("pages", Integer, nullable=False, server_default="0"),
    Column("added", Integer, nullable=False, server_default="0"),
    Column("modified", Integer, nullable=False, server_default="0"),
    Column("deleted", Integer, nullable=False, server_default="0"),
    # Devices of the run already stored with the same Apple fields (since revision 0009).
    Column("unchanged", Integer, nullable=False, server_default="0"),
    Column("assigned", Integer, nullable=False, server_default="0"),
    Column("outcome", String(16), nullable=False),  # RunOutcome: running | ok | ... | interrupted
    Column("error_code", String(64), nullable=True),
    # With error_code sync_failing (since revision 0011): database_unavailable, disk_full or
    # internal_error, and the reference of the log line that holds the traceback.
    Column("error_detail", String(32), nullable=True),
    Column("error_reference", String(16), nullable=True),
    Column("cursor_recovered", Boolean, nullable=False, server_default=false()),
    Index("ix_sync_runs_token_started", "token_id", "started_at"),
)

# Each scheduler process (serve or worker) writes its heartbeat here.
worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker_id", String(128), primary_key=True),
    Column("kind", String(16), nullable=False),  # serve | worker
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
)

# Leases that are not about one token (the periodic health evaluation, ...).
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(128), nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
)

__all__ = [
    "assignments",
    "device_history",
    "devices",
    "leases",
    "profiles",
    "sync_runs",
    "worker_heartbeats",
]
