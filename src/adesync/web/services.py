"""The use cases the web layer calls, built once per app from its state.

The web never duplicates a use case: tokens come from :mod:`adesync.services.tokens`, syncs,
checks and profiles from :mod:`adesync.sync`, reports from :mod:`adesync.health`.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Select, case, null, select

from adesync.services import tokens as token_service
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.web.counts import CountCache, device_counts
from adesync.web.state import WebState

__all__ = [
    "cached_page_of_tokens",
    "console_page_of_tokens",
    "device_counts",
    "page_of_tokens",
    "sync_service",
]


def sync_service(state: WebState) -> Any:
    """The process's SyncService (created on first use; the scheduler shares it)."""
    if state.sync is None:
        from adesync.store.lease_repo import new_worker_id
        from adesync.sync.service import SyncService

        state.sync = SyncService(state.db, state.box, state.settings, worker=new_worker_id("serve"))
    return state.sync


def profile_service(state: WebState) -> Any:
    from adesync.sync.profiles import ProfileService

    return ProfileService(sync_service(state))


# What a listing shows (token_document and extra_fields); secrets are read as "is it there"
# flags instead of their bytes, and columns nobody shows are not read at all.
_PRESENCE_ONLY = ("oauth_credentials", "pending_private_key")
_SHOWN = (
    "id",
    "name",
    "state",
    "state_reason",
    "token_type",
    "access_token_expiry",
    "org_name",
    "server_name",
    "server_uuid",
    "admin_id",
    "dep_url",
    "last_sync_at",
    "last_successful_sync_at",
    "last_error_code",
    "default_profile_uuid",
    "identity_verified_at",
    "token_added_at",
    "token_renewed_at",
    "state_changed_at",
    "last_error_at",
    "last_error_status",
    "consecutive_failures",
    "failing_since",
    "throttled_until",
    "terms_not_accepted",
    "token_rejected",
    "access_denied",
    "next_sync_at",
    "last_manual_sync_at",
)


@functools.cache
def _listing() -> Select[Any]:
    """The listing's columns by name; a secret comes back as 1 when it is there, else null
    (``token_document`` only asks whether it is), so rows need no reshaping."""
    columns: list[Any] = [tokens.c[name] for name in _SHOWN]
    columns += [case((tokens.c[name].is_not(None), 1)).label(name) for name in _PRESENCE_ONLY]
    # Filled in from the counts; present so that token_document's row.get finds it (a key a
    # row lacks costs an exception inside SQLAlchemy, 100 times a page).
    columns.append(null().label("device_count"))
    return select(*columns).order_by(tokens.c.name)


async def cached_page_of_tokens(
    state: WebState,
    *,
    limit: int,
    after: str | None = None,
    include_waiting: bool = False,
    token_state: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """``page_of_tokens`` with the state's device counts (up to COUNT_TTL seconds old)."""
    return await page_of_tokens(
        state.db,
        limit=limit,
        after=after,
        include_waiting=include_waiting,
        state=token_state,
        count_cache=state.counts,
    )


@functools.cache
def _console_listing() -> Select[Any]:
    """Only what the console's token list shows: a page reads 10 columns instead of 31
    (each timestamp column is parsed per row, and the page shows two of the twelve)."""
    return select(
        tokens.c.id,
        tokens.c.name,
        case((tokens.c.oauth_credentials.is_not(None), 1)).label("installed"),
        tokens.c.state,
        tokens.c.state_reason,
        tokens.c.token_type,
        tokens.c.access_token_expiry,
        tokens.c.org_name,
        tokens.c.last_successful_sync_at,
        tokens.c.default_profile_uuid,
    ).order_by(tokens.c.name)


def _page(
    listing: Select[Any], limit: int, after: str | None, token_state: str | None
) -> Select[Any]:
    """``listing`` (ordered by name) cut to one page: ``limit`` + 1 rows (the extra one says
    whether more follow) after the name ``after``, only tokens in ``token_state`` if given."""
    query = listing.limit(limit + 1)
    if after is not None:
        query = query.where(tokens.c.name > after)
    if token_state is not None:
        query = query.where(tokens.c.state == token_state)
    return query


async def console_page_of_tokens(
    state: WebState, *, limit: int, after: str | None = None, token_state: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the console's token list (waiting tokens included), each with the fields
    of ``token_document`` it shows (``name``, ``status``, ``state``, ``state_reason``,
    ``token_type``, ``expires_at``, ``org_name``, ``last_successful_sync_at``,
    ``default_profile_uuid``) and ``device_count`` (up to COUNT_TTL seconds old); and the name
    to continue after."""
    query = _page(_console_listing(), limit, after, token_state)
    async with state.db.read() as session:
        rows = (await session.execute(query)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    counts = await state.counts.counts(state.db, [int(row[0]) for row in rows])
    # Unpacked by position: a Row's attribute lookup by name costs more, ten times a row.
    items = [
        {
            "name": name,
            "status": "installed" if installed is not None else "waiting_for_p7m",
            "state": token_state_,
            "state_reason": reason,
            "token_type": token_type,
            "expires_at": expiry,
            "org_name": org,
            "last_successful_sync_at": synced,
            "default_profile_uuid": profile,
            "device_count": counts.get(int(token_id), 0),
        }
        for (
            token_id,
            name,
            installed,
            token_state_,
            reason,
            token_type,
            expiry,
            org,
            synced,
            profile,
        ) in rows
    ]
    return items, (rows[-1].name if more and rows else None)


async def page_of_tokens(
    db: Database,
    *,
    limit: int,
    after: str | None = None,
    include_waiting: bool = False,
    state: str | None = None,
    count_cache: CountCache | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of tokens by name (keyset), each as ``token_document`` plus its device count,
    organisation and the reason fields the console shows; and the name to continue after.
    With ``count_cache``, device counts up to COUNT_TTL seconds old are reused."""
    query = _page(_listing(), limit, after, state)
    if not include_waiting:
        query = query.where(tokens.c.oauth_credentials.is_not(None))
    async with db.read() as session:
        rows = (await session.execute(query)).mappings().all()
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [int(row["id"]) for row in rows]
    counts = await (
        count_cache.counts(db, ids) if count_cache is not None else device_counts(db, ids)
    )
    documents = []
    for row in rows:
        document = token_service.token_document(row)
        document["device_count"] = counts.get(int(row["id"]), 0)
        document.update(extra_fields(row))
        documents.append(document)
    return documents, (rows[-1]["name"] if more and rows else None)


def extra_fields(row: Any) -> dict[str, Any]:
    """What the console needs beyond the listing fields (never a secret)."""
    return {
        "state_changed_at": row["state_changed_at"],
        "last_error_at": row["last_error_at"],
        "last_error_status": row["last_error_status"],
        "consecutive_failures": row["consecutive_failures"],
        "failing_since": row["failing_since"],
        "throttled_until": row["throttled_until"],
        "terms_not_accepted": bool(row["terms_not_accepted"]),
        "token_rejected": bool(row["token_rejected"]),
        "access_denied": bool(row["access_denied"]),
        "next_sync_at": row["next_sync_at"],
        "last_manual_sync_at": row["last_manual_sync_at"],
    }


async def token_extras(db: Database, name: str) -> dict[str, Any]:
    """Device count and the console's extra fields of one token (empty if it is gone)."""
    async with db.read() as session:
        row = (
            (await session.execute(select(tokens).where(tokens.c.name == name))).mappings().first()
        )
    if row is None:
        return {}
    counts = await device_counts(db, [int(row["id"])])
    return {"device_count": counts.get(int(row["id"]), 0), **extra_fields(row)}


async def token_ids(db: Database, name: str) -> int | None:
    async with db.read() as session:
        return (await session.execute(select(tokens.c.id).where(tokens.c.name == name))).scalar()
