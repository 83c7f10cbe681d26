"""The use cases the web layer calls, built once per app from its state.

The web never duplicates a use case: tokens come from :mod:`adesync.services.tokens`, syncs,
checks and profiles from :mod:`adesync.sync`, reports from :mod:`adesync.health`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, case, null, select

from adesync.store.database import Database

if TYPE_CHECKING:
    from adesync.services.profiles import ProfileService
    from adesync.sync.service import SyncService
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


def sync_service(state: WebState) -> SyncService:
    """The process's SyncService (created on first use; the scheduler shares it)."""
    if state.sync is None:
        from adesync.store.lease_repo import new_worker_id
        from adesync.sync.service import SyncService
        from adesync.wiring import page_events

        state.sync = SyncService(
            state.db,
            state.box,
            state.settings,
            worker=new_worker_id("serve"),
            page_events=page_events(),
        )
    service: SyncService = state.sync
    return service


def profile_service(state: WebState) -> ProfileService:
    from adesync.services.profiles import ProfileService

    return ProfileService(sync_service(state))


@functools.cache
def _listing() -> Select[Any]:
    """A listing's rows as documents: ``token_document``'s fields in its order, then
    ``extra_fields``, each column labelled with its field's name (a row becomes its document
    by ``dict(zip(keys, row))``, three times faster than mapping 30 fields by hand, 100 times
    a page); the secrets are read as "is it there", and the id comes last, for the counts.
    tests/web/test_token_listing.py holds this to token_document and extra_fields."""
    t = tokens.c
    return select(
        t.name,
        case((t.oauth_credentials.is_not(None), "installed"), else_="waiting_for_p7m").label(
            "status"
        ),
        t.state,
        t.state_reason,
        t.token_type,
        t.access_token_expiry.label("expires_at"),
        t.org_name,
        t.server_name,
        t.server_uuid,
        t.admin_id,
        t.dep_url,
        t.last_sync_at,
        t.last_successful_sync_at,
        t.last_error_code,
        null().label("device_count"),
        t.default_profile_uuid,
        t.identity_verified_at,
        t.token_added_at.label("added_at"),
        t.token_renewed_at.label("renewed_at"),
        t.pending_private_key.is_not(None).label("keypair_pending"),
        *(t[name] for name in EXTRA_FIELDS),
        t.id,
    ).order_by(t.name)


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


# What the console's token list shows: a page reads 11 of the listing's 32 columns (each
# timestamp column is parsed per row, and the page shows two of the twelve).
_CONSOLE_FIELDS = (
    "name",
    "status",
    "state",
    "state_reason",
    "token_type",
    "expires_at",
    "org_name",
    "last_successful_sync_at",
    "device_count",
    "default_profile_uuid",
    "id",
)


@functools.cache
def _console_listing() -> Select[Any]:
    """The listing cut to the columns the console's token list shows (same labels, order)."""
    columns = _listing().selected_columns
    return _listing().with_only_columns(*(columns[name] for name in _CONSOLE_FIELDS))


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
    return await _documents(state.db, query, limit, state.counts)


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
    return await _documents(db, query, limit, count_cache)


async def _documents(
    db: Database, query: Select[Any], limit: int, count_cache: CountCache | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The page ``query`` reads (a listing's labelled columns, ``limit`` + 1 rows) as
    documents with their device counts, and the name to continue after."""
    async with db.read() as session:
        result = await session.execute(query)
        keys = list(result.keys())
        rows = result.all()
    more = len(rows) > limit
    documents = [dict(zip(keys, row, strict=True)) for row in rows[:limit]]
    ids = [document.pop("id") for document in documents]
    counts = await (
        count_cache.counts(db, ids) if count_cache is not None else device_counts(db, ids)
    )
    for document, token_id in zip(documents, ids, strict=True):
        document["device_count"] = counts.get(token_id, 0)
    return documents, (documents[-1]["name"] if more and documents else None)


# What the console needs beyond token_document's fields, in this order (never a secret).
EXTRA_FIELDS = (
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


def extra_fields(row: Any) -> dict[str, Any]:
    """What the console needs beyond the listing fields (never a secret)."""
    flags = ("terms_not_accepted", "token_rejected", "access_denied")
    return {name: bool(row[name]) if name in flags else row[name] for name in EXTRA_FIELDS}


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
