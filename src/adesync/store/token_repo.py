"""Database operations on the ``tokens`` table for the token use cases (add, renew, list, ...).

Every function works inside the caller's session, so a use case composes several in one
transaction. Values arrive already sealed: this module never sees a secret in the clear.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, case, delete, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.store.tables import tokens
from adesync.store.tables_sync import devices

Slot = Literal["pending", "active"]

# What Apple's /account says about the MDM server and organisation behind a token.
IDENTITY_COLUMNS: tuple[str, ...] = (
    "server_uuid",
    "server_name",
    "org_name",
    "org_email",
    "org_phone",
    "org_address",
    "org_id",
    "org_id_hash",
    "org_type",
    "org_version",
    "admin_id",
)


def device_count_column() -> Any:
    """Live devices of the token in the same row (``device_count``), from the sync tables."""
    return (
        select(func.count())
        .where(devices.c.token_id == tokens.c.id, devices.c.deleted.is_(False))
        .scalar_subquery()
        .label("device_count")
    )


async def get_token(
    session: AsyncSession, name: str, *, for_update: bool = False
) -> RowMapping | None:
    """The row of token ``name`` (with ``device_count``), or None; ``for_update`` locks it
    (on PostgreSQL)."""
    query = select(tokens, device_count_column()).where(tokens.c.name == name)
    if for_update:
        query = query.with_for_update(of=tokens)
    return (await session.execute(query)).mappings().one_or_none()


async def list_tokens(session: AsyncSession, *, include_waiting: bool) -> Sequence[RowMapping]:
    """Rows holding credentials, by name; ``include_waiting`` adds key pairs without a token."""
    query = select(tokens, device_count_column()).order_by(tokens.c.name)
    if not include_waiting:
        query = query.where(tokens.c.oauth_credentials.is_not(None))
    return (await session.execute(query)).mappings().all()


async def create_token(
    session: AsyncSession,
    *,
    name: str,
    dep_url: str,
    token_type: str,
    now: datetime,
    dep_url_checked: bool = False,
) -> int:
    """Insert a row with no key pair and no credentials yet; returns its id."""
    result = await session.execute(
        insert(tokens)
        .values(
            name=name,
            dep_url=dep_url,
            dep_url_checked=dep_url_checked,
            token_type=token_type,
            created_at=now,
            updated_at=now,
        )
        .returning(tokens.c.id)
    )
    return int(result.scalar_one())


async def set_pending_keypair(
    session: AsyncSession,
    token_id: int,
    *,
    sealed_private_key: bytes,
    certificates_pem: str,
    now: datetime,
) -> None:
    """Store (or replace) the key pair waiting for its first ``.p7m``."""
    await session.execute(
        update(tokens)
        .where(tokens.c.id == token_id)
        .values(
            pending_private_key=sealed_private_key,
            pending_certificates=certificates_pem,
            pending_created_at=now,
            updated_at=now,
        )
    )


async def set_certificates(
    session: AsyncSession, token_id: int, slot: Slot, certificates_pem: str, *, now: datetime
) -> None:
    """Replace the certificates of one key (after a certificate was re-issued for it)."""
    column = tokens.c.pending_certificates if slot == "pending" else tokens.c.active_certificates
    await session.execute(
        update(tokens)
        .where(tokens.c.id == token_id)
        .values({column: certificates_pem, tokens.c.updated_at: now})
    )


async def promote_pending(session: AsyncSession, token_id: int, *, now: datetime) -> None:
    """The pending key pair becomes the active one; the earlier active key is dropped."""
    await session.execute(
        update(tokens)
        .where(tokens.c.id == token_id, tokens.c.pending_private_key.is_not(None))
        .values(
            active_private_key=tokens.c.pending_private_key,
            active_certificates=tokens.c.pending_certificates,
            active_since=now,
            pending_private_key=None,
            pending_certificates=None,
            pending_created_at=None,
            updated_at=now,
        )
    )


async def store_credentials(
    session: AsyncSession,
    token_id: int,
    *,
    sealed_credentials: bytes,
    access_token_expiry: datetime,
    identity: Mapping[str, str | None] | None,
    event: Literal["added", "renewed"],
    now: datetime,
    dep_url: str | None = None,
    token_type: str | None = None,
) -> None:
    """Store a token's sealed OAuth values and expiry, clear what Apple said of the old ones
    (flags, failure streak, wait) and schedule the next sync now with the manual-sync
    allowance whole.

    With ``identity`` (Apple's /account answer) the identity columns are replaced and marked
    verified now; without it they are kept but marked unverified (``identity_verified_at``
    null), since nobody has asked Apple about these credentials yet.
    """
    values: dict[str, object] = {
        "oauth_credentials": sealed_credentials,
        "access_token_expiry": access_token_expiry,
        "identity_verified_at": now if identity is not None else None,
        "updated_at": now,
        "token_added_at" if event == "added" else "token_renewed_at": now,
        # New credentials: what Apple said of the old ones no longer holds.
        **failures_cleared(),
        **schedule_after_fix(now, only_if_failing=False),
    }
    if identity is not None:
        values.update({column: identity.get(column) for column in IDENTITY_COLUMNS})
    if dep_url is not None:
        values["dep_url"] = dep_url
    if token_type is not None:
        values["token_type"] = token_type
    await session.execute(update(tokens).where(tokens.c.id == token_id).values(values))


# The error code of a sync that failed on something other than Apple's answer (the database,
# the disk, a defect): a check of the token proves nothing about it, only a sync does.
SYNC_FAILING = "sync_failing"


def failures_cleared(*, by_check: bool = False) -> dict[str, Any]:
    """The columns an answer from Apple that accepted the token resets: its credential flags,
    the failure streak (and with it the error backoff) and any wait Apple asked for.
    ``by_check``: a check, which leaves a streak of ``sync_failing`` (the sync's own failure)."""
    values: dict[str, Any] = {
        "terms_not_accepted": False,
        "token_rejected": False,
        "access_denied": False,
        "consecutive_failures": 0,
        "failing_since": None,
        "throttled_until": None,
    }
    if by_check:
        own = tokens.c.last_error_code == SYNC_FAILING
        values["consecutive_failures"] = case((own, tokens.c.consecutive_failures), else_=0)
        values["failing_since"] = case((own, tokens.c.failing_since), else_=None)
    return values


def failing() -> ColumnElement[bool]:
    """The token was in a failure streak or carried a credential flag (before an UPDATE's
    values apply: SET expressions read the row as it was)."""
    return or_(
        tokens.c.consecutive_failures > 0,
        tokens.c.terms_not_accepted.is_(True),
        tokens.c.token_rejected.is_(True),
        tokens.c.access_denied.is_(True),
    )


def schedule_after_fix(now: datetime, *, only_if_failing: bool) -> dict[str, Any]:
    """What follows a fix: the next scheduled sync is now and the manual-sync allowance is
    whole again (a failed attempt used it up). ``only_if_failing``: only for a token that was
    failing (a check of a healthy token leaves its schedule alone)."""
    if not only_if_failing:
        return {"next_sync_at": now, "last_manual_sync_at": None}
    return {
        "next_sync_at": case((failing(), now), else_=tokens.c.next_sync_at),
        "last_manual_sync_at": case((failing(), None), else_=tokens.c.last_manual_sync_at),
    }


async def names_holding_server(
    session: AsyncSession, server_uuid: str, *, except_token_id: int | None = None
) -> list[str]:
    """Names of tokens (holding credentials) whose MDM server is ``server_uuid``."""
    query = select(tokens.c.name).where(
        tokens.c.server_uuid == server_uuid, tokens.c.oauth_credentials.is_not(None)
    )
    if except_token_id is not None:
        query = query.where(tokens.c.id != except_token_id)
    return list((await session.execute(query.order_by(tokens.c.name))).scalars().all())


async def ids_holding_servers(session: AsyncSession, server_uuids: Iterable[str]) -> list[int]:
    """Ids of tokens (holding credentials) whose MDM server is one of ``server_uuids``."""
    wanted = [uuid for uuid in server_uuids if uuid]
    if not wanted:
        return []
    query = select(tokens.c.id).where(
        tokens.c.server_uuid.in_(wanted), tokens.c.oauth_credentials.is_not(None)
    )
    return [int(i) for i in (await session.execute(query)).scalars().all()]


async def delete_token(session: AsyncSession, token_id: int) -> None:
    """Delete the row; rows of other tables that belong to the token go with it (ON DELETE
    CASCADE)."""
    await session.execute(delete(tokens).where(tokens.c.id == token_id))


__all__ = [
    "IDENTITY_COLUMNS",
    "SYNC_FAILING",
    "create_token",
    "delete_token",
    "failing",
    "failures_cleared",
    "get_token",
    "ids_holding_servers",
    "list_tokens",
    "names_holding_server",
    "promote_pending",
    "schedule_after_fix",
    "set_certificates",
    "set_pending_keypair",
    "store_credentials",
]
