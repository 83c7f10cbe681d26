"""The rows a backup holds, read out of the database and written back into one.

Values cross as JSON: sealed columns opened (base64 of the plaintext; the archive is sealed as
a whole by :mod:`adesync.services.backup`), times as ISO 8601, the rest as they are. Restoring
seals them again under the target's key. Every column of the tables below is either kept or
named as rebuilt by the next sync, so a new column is a decision, not an omission
(tests/services/test_backup.py checks it, and that every sealed column is kept).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Table, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.store.keycheck import hold_key
from adesync.store.secrets import SecretBox
from adesync.store.tables import tokens
from adesync.store.tables_sync import profiles
from adesync.store.tables_web import api_keys, users, web_secrets
from adesync.store.token_repo import IDENTITY_COLUMNS
from adesync.store.types import UTCDateTime

__all__ = [
    "KEPT",
    "REBUILT",
    "Clashes",
    "find_clashes",
    "read_backup_rows",
    "write_backup_rows",
]

Row = dict[str, Any]

# What the admin set up and Apple handed out: key pairs, certificates, OAuth values, identity.
TOKEN_KEPT = (
    "name",
    "token_type",
    "dep_url",
    "dep_url_checked",
    "oauth_credentials",
    "access_token_expiry",
    "token_added_at",
    "token_renewed_at",
    *IDENTITY_COLUMNS,
    "identity_verified_at",
    "pending_private_key",
    "pending_certificates",
    "pending_created_at",
    "active_private_key",
    "active_certificates",
    "active_since",
    "default_profile_uuid",
    "created_at",
)
# Sync position, leases, Apple's last answers and health: a restored token starts a full fetch
# and is evaluated again by it.
TOKEN_REBUILT = (
    "id",
    "cursor",
    "cursor_issued_at",
    "fetch_started_at",
    "last_full_fetch_at",
    "last_sync_at",
    "last_successful_sync_at",
    "last_manual_sync_at",
    "next_sync_at",
    "lease_owner",
    "lease_expires_at",
    "last_error_code",
    "last_error_status",
    "last_error_body",
    "last_error_at",
    "last_error_detail",
    "last_error_reference",
    "profile_error_code",
    "profile_error_body",
    "profile_error_at",
    "profile_error_uuid",
    "consecutive_failures",
    "failing_since",
    "throttled_until",
    "clock_skew_seconds",
    "terms_not_accepted",
    "token_rejected",
    "access_denied",
    "state",
    "state_reason",
    "state_changed_at",
    "updated_at",
)


def _all_but(table: Table, *rebuilt: str) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if c.name not in rebuilt)


KEPT: dict[str, tuple[str, ...]] = {
    "tokens": TOKEN_KEPT,
    "profiles": _all_but(profiles, "id", "token_id"),
    "users": _all_but(users, "id"),
    "api_keys": _all_but(api_keys, "id"),
    "web_secrets": _all_but(web_secrets),
}
REBUILT: dict[str, tuple[str, ...]] = {
    "tokens": TOKEN_REBUILT,
    "profiles": ("id", "token_id"),  # the token is named instead
    "users": ("id",),
    "api_keys": ("id",),
    "web_secrets": (),
}
TABLES: dict[str, Table] = {
    "tokens": tokens,
    "profiles": profiles,
    "users": users,
    "api_keys": api_keys,
    "web_secrets": web_secrets,
}


def _encode(column: Column[Any], value: Any, box: SecretBox) -> Any:
    if value is None:
        return None
    if column.info.get("secret"):
        return base64.b64encode(box.open(value)).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _decode(column: Column[Any], value: Any, box: SecretBox) -> Any:
    if value is None:
        return None
    if column.info.get("secret"):
        return box.seal(base64.b64decode(value, validate=True))
    if isinstance(column.type, UTCDateTime):
        return datetime.fromisoformat(value)
    return value


async def _read(
    session: AsyncSession, name: str, box: SecretBox, *extra: Column[Any]
) -> list[tuple[Row, tuple[Any, ...]]]:
    table = TABLES[name]
    columns = [table.c[c] for c in KEPT[name]]
    result = await session.execute(select(*columns, *extra).order_by(*table.primary_key.columns))
    rows = []
    for row in result:
        values = {c.name: _encode(c, row[i], box) for i, c in enumerate(columns)}
        rows.append((values, tuple(row[len(columns) :])))
    return rows


async def read_backup_rows(session: AsyncSession, box: SecretBox) -> dict[str, list[Row]]:
    """Every kept row, secrets opened: tokens (each with its ``profiles``), users, API keys
    and the sealed secrets of the web layer."""
    by_token: dict[int, list[Row]] = {}
    for row, (token_id,) in await _read(session, "profiles", box, profiles.c.token_id):
        by_token.setdefault(token_id, []).append(row)
    token_rows = []
    for row, (token_id,) in await _read(session, "tokens", box, tokens.c.id):
        token_rows.append({**row, "profiles": by_token.get(token_id, [])})
    return {
        "tokens": token_rows,
        "users": [row for row, _ in await _read(session, "users", box)],
        "api_keys": [row for row, _ in await _read(session, "api_keys", box)],
        "web_secrets": [row for row, _ in await _read(session, "web_secrets", box)],
    }


Clashes = dict[str, list[str]]


async def _existing(session: AsyncSession, column: Column[Any], values: Iterable[Any]) -> set[Any]:
    wanted = list(values)
    if not wanted:
        return set()
    return set((await session.execute(select(column).where(column.in_(wanted)))).scalars())


async def find_clashes(session: AsyncSession, rows: Mapping[str, list[Row]]) -> Clashes:
    """The names of tokens, users and API keys of ``rows`` that the database already has."""
    keys = rows["api_keys"]
    key_clashes = await _existing(session, api_keys.c.name, (k["name"] for k in keys))
    prefixes = await _existing(session, api_keys.c.prefix, (k["prefix"] for k in keys))
    key_clashes |= {k["name"] for k in keys if k["prefix"] in prefixes}
    token_names = (t["name"] for t in rows["tokens"])
    user_names = (u["name"] for u in rows["users"])
    return {
        "tokens": sorted(await _existing(session, tokens.c.name, token_names)),
        "users": sorted(await _existing(session, users.c.name, user_names)),
        "api_keys": sorted(key_clashes),
    }


def _values(name: str, row: Row, box: SecretBox) -> Row:
    table = TABLES[name]
    return {c: _decode(table.c[c], row.get(c), box) for c in KEPT[name]}


async def _replace(session: AsyncSession, rows: Mapping[str, list[Row]]) -> None:
    """Delete what the rows replace (a token's devices and history go with it)."""
    names = [t["name"] for t in rows["tokens"]]
    await session.execute(delete(tokens).where(tokens.c.name.in_(names)))
    await session.execute(delete(users).where(users.c.name.in_([u["name"] for u in rows["users"]])))
    keys = rows["api_keys"]
    await session.execute(
        delete(api_keys).where(
            or_(
                api_keys.c.name.in_([k["name"] for k in keys]),
                api_keys.c.prefix.in_([k["prefix"] for k in keys]),
            )
        )
    )


async def write_backup_rows(
    session: AsyncSession,
    rows: Mapping[str, list[Row]],
    box: SecretBox,
    *,
    now: datetime,
    replace: bool,
) -> dict[str, int]:
    """Insert the rows, sealing secrets under ``box``; with ``replace`` first delete the tokens,
    users and API keys of the same names. A web secret the database has already is kept (its
    own cookie key). Restored tokens are due for a sync now. Returns how many rows of each."""
    await hold_key(session, box)
    if replace:
        await _replace(session, rows)
    for token in rows["tokens"]:
        values = {**_values("tokens", token, box), "updated_at": now, "next_sync_at": now}
        token_id = (
            await session.execute(tokens.insert().values(values).returning(tokens.c.id))
        ).scalar_one()
        for profile in token.get("profiles", []):
            profile_values = {**_values("profiles", profile, box), "token_id": token_id}
            await session.execute(profiles.insert().values(profile_values))
    for name in ("users", "api_keys"):
        for row in rows[name]:
            await session.execute(TABLES[name].insert().values(_values(name, row, box)))
    present = await _existing(session, web_secrets.c.name, (s["name"] for s in rows["web_secrets"]))
    for secret in rows["web_secrets"]:
        if secret["name"] not in present:
            await session.execute(web_secrets.insert().values(_values("web_secrets", secret, box)))
    return {
        "tokens": len(rows["tokens"]),
        "profiles": sum(len(t.get("profiles", [])) for t in rows["tokens"]),
        "users": len(rows["users"]),
        "api_keys": len(rows["api_keys"]),
    }
