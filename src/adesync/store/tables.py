"""SQLAlchemy Core tables. Each later feature adds its tables here and a migration beside them.

A column whose ``info`` has ``secret=True`` holds bytes sealed by :mod:`adesync.store.secrets`;
``adesync secrets rotate`` re-seals every such column, so a new secret column needs nothing else.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from adesync.store.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

SECRET = {"secret": True}

# One row per setting the installation keeps about itself (the secret key check, ...).
meta = Table(
    "adesync_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# An enrollment-program (server) token: the key pair ABM/ASM encrypts to, the OAuth credentials
# from the .p7m, what Apple says about the MDM server, the sync cursor, the worker lease and the
# last error Apple gave.
tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("token_type", String(8), nullable=False, server_default="abm"),
    Column("dep_url", String(500), nullable=False),
    # Set when the URL came through the API or the console: every connection is then checked
    # against ADESYNC_ALLOWED_DEP_HOSTS (the CLI's --dep-url is the host administrator's own).
    Column("dep_url_checked", Boolean, nullable=False, server_default=false()),
    # OAuth 1.0a values from the .p7m, sealed together as JSON.
    Column("oauth_credentials", LargeBinary, nullable=True, info=SECRET),
    Column("access_token_expiry", UTCDateTime, nullable=True),
    Column("token_added_at", UTCDateTime, nullable=True),
    Column("token_renewed_at", UTCDateTime, nullable=True),
    # Identity from Apple's /account (null until verified).
    Column("server_uuid", String(64), nullable=True, index=True),
    Column("server_name", String(255), nullable=True),
    Column("org_name", String(255), nullable=True),
    Column("org_email", String(255), nullable=True),
    Column("org_phone", String(64), nullable=True),
    Column("org_address", Text, nullable=True),
    Column("org_id", String(64), nullable=True),
    Column("org_id_hash", String(128), nullable=True),
    Column("org_type", String(16), nullable=True),
    Column("org_version", String(8), nullable=True),
    Column("admin_id", String(255), nullable=True),
    Column("identity_verified_at", UTCDateTime, nullable=True),
    # Key pairs: PEM private key (sealed) and every PEM certificate issued for that key.
    Column("pending_private_key", LargeBinary, nullable=True, info=SECRET),
    Column("pending_certificates", Text, nullable=True),
    Column("pending_created_at", UTCDateTime, nullable=True),
    Column("active_private_key", LargeBinary, nullable=True, info=SECRET),
    Column("active_certificates", Text, nullable=True),
    Column("active_since", UTCDateTime, nullable=True),
    # Sync position and times.
    Column("cursor", Text, nullable=True),
    Column("cursor_issued_at", UTCDateTime, nullable=True),
    # Set while a full fetch is under way (the start time marks the devices it returns).
    Column("fetch_started_at", UTCDateTime, nullable=True),
    Column("last_full_fetch_at", UTCDateTime, nullable=True),
    Column("last_sync_at", UTCDateTime, nullable=True),
    Column("last_successful_sync_at", UTCDateTime, nullable=True),
    Column("last_manual_sync_at", UTCDateTime, nullable=True),
    Column("next_sync_at", UTCDateTime, nullable=True, index=True),
    Column("default_profile_uuid", String(64), nullable=True),
    # Worker lease: who syncs this token now, and until when the claim holds.
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    # The last error Apple (or the network) gave, in the findings vocabulary.
    Column("last_error_code", String(64), nullable=True),
    Column("last_error_status", Integer, nullable=True),
    Column("last_error_body", Text, nullable=True),
    Column("last_error_at", UTCDateTime, nullable=True),
    # For ``sync_failing`` (a sync that ended on something other than Apple's answer): what
    # failed (database_unavailable, disk_full, internal_error), and the log line's reference.
    Column("last_error_detail", String(32), nullable=True),
    Column("last_error_reference", String(16), nullable=True),
    # The last profile error (profile_invalid, profile_not_found), kept when later errors of
    # other kinds replace the last error: the profile findings read it.
    Column("profile_error_code", String(64), nullable=True),
    Column("profile_error_body", Text, nullable=True),
    Column("profile_error_at", UTCDateTime, nullable=True),
    Column("profile_error_uuid", String(64), nullable=True),  # the profile Apple refused
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("failing_since", UTCDateTime, nullable=True),
    Column("throttled_until", UTCDateTime, nullable=True),
    # Local clock minus Apple's Date header at the last answer, in seconds.
    Column("clock_skew_seconds", Float, nullable=True),
    Column("terms_not_accepted", Boolean, nullable=False, server_default=false()),
    Column("token_rejected", Boolean, nullable=False, server_default=false()),
    Column("access_denied", Boolean, nullable=False, server_default=false()),
    # Health, stored so listings need not re-run the rules.
    Column("state", String(16), nullable=True),
    Column("state_reason", String(64), nullable=True),
    Column("state_changed_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
