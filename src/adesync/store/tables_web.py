"""Tables of the web feature: console users, API keys, console sessions, the audit log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from adesync.store.tables import SECRET, metadata
from adesync.store.types import UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")

# A person who signs in to the console. Passwords are kept as argon2id hashes only.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # viewer | operator | admin
    Column("password_hash", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("password_changed_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime, nullable=True),
)

# A key for scripts and MDM webhooks. The key is shown once; only its SHA-256 is kept, found
# through the short public prefix written at the start of the key.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # viewer | operator | admin | ingest
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
)

# A signed-in console session; the cookie carries the session id, signed. Deleting the row
# (sign out, password change, user removed) ends the session on every server at once. The
# session's CSRF secret is issued with it (a new one at every sign-in); forms carry an HMAC of it.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("csrf_secret", String(64), nullable=False),
)

# Failed console sign-ins of the last minutes (an attempt is written when it starts and
# removed when it succeeds), shared by every serve process: they slow guessing per name and
# refuse an address that fails too often.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),  # lower case
    Column("address", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_login_failures_name_at", "name", "at"),
    Index("ix_login_failures_address_at", "address", "at"),
    Index("ix_login_failures_at", "at"),
)

# Secrets the web layer keeps for itself (the cookie signing key), sealed like every secret.
web_secrets = Table(
    "web_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False, info=SECRET),
)

# Every change anyone made: who (user or key), what, to which object, and when.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),  # user:NAME | apikey:NAME | cli:LOGIN | system
    Column("action", String(64), nullable=False),  # token.create, user.add, profile.assign, ...
    Column("target", String(255), nullable=True),
    Column("detail", Text, nullable=True),  # JSON, never a secret
    Column("remote_addr", String(64), nullable=True),
    Index("ix_audit_log_at", "at"),
)

__all__ = ["api_keys", "audit_log", "login_failures", "users", "web_secrets", "web_sessions"]
