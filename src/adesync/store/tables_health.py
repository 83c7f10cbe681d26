"""Tables of the health feature: current findings and the notification outbox."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from adesync.store.tables import metadata, tokens
from adesync.store.tables_sync import devices
from adesync.store.types import UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")

# What the rules found at the latest evaluation, one row per (token, code); a row disappears
# when its finding clears. ``token_id`` is null for findings about the installation (a
# scheduler that stopped). ``data`` holds the message parameters as JSON, so listings and
# notifications can word a finding in any language without running the rules again.
findings = Table(
    "findings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_id", Integer, ForeignKey("tokens.id", ondelete="CASCADE"), nullable=True),
    Column("code", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("count", Integer, nullable=False, server_default="1"),
    Column("samples", Text, nullable=False, server_default="[]"),
    Column("data", Text, nullable=False, server_default="{}"),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    UniqueConstraint("token_id", "code"),
    Index("ix_findings_code", "code"),
)

# Notifications waiting to go out (or kept for a while after they went): one row per event and
# channel. ``dedup_key`` is unique per channel, so an event enqueued twice is sent once;
# delivery is at least once (a row is marked delivered only after the receiver accepted it).
notify_outbox = Table(
    "notify_outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("channel", String(16), nullable=False),  # webhook | email | device_events
    Column("event", String(48), nullable=False),
    Column("dedup_key", String(255), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),  # pending|sent|failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    # A deliverer's claim: no other process sends the row before this time.
    Column("claimed_until", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    UniqueConstraint("channel", "dedup_key"),
    Index("ix_notify_outbox_due", "status", "next_attempt_at"),
)

# Live devices without an enrollment profile, for the ``devices_without_profile`` rule: a
# partial index, so it holds only those rows however many devices there are. Keyed by id (the
# order devices were first stored, which is also the order of a finding's samples), not by
# serial number: a fetch of a new token's devices, none with a profile yet, then appends to it
# instead of inserting at random places (a fifth of a fetched device's write on SQLite).
NO_PROFILE_PREDICATE = "deleted = false AND profile_status IN ('empty', 'removed')"
ix_devices_without_profile = Index(
    "ix_devices_without_profile",
    devices.c.token_id,
    devices.c.id,
    sqlite_where=text(NO_PROFILE_PREDICATE.replace("false", "0")),
    postgresql_where=text(NO_PROFILE_PREDICATE),
)

# Tokens by stored state, in name order: the console's alert banner (on every page) counts the
# tokens in error and names the first few from this index alone, without reading every token.
ix_tokens_state = Index("ix_tokens_state", tokens.c.state, tokens.c.name)

__all__ = [
    "NO_PROFILE_PREDICATE",
    "findings",
    "ix_devices_without_profile",
    "ix_tokens_state",
    "notify_outbox",
]
