"""Checking tokens with Apple now, many at once: what ``adesync diagnose`` does before it
re-evaluates (and what the console or API may reuse to check every token).

Each token is checked by the caller's one-token check (``SyncService.check``: ``/session`` and
``/account``, the answer recorded on the token exactly as any check records it). A token inside
Apple's ``Retry-After`` is not called; a check that gets no answer in time is recorded as
``apple_unavailable``. A check never uses the manual-sync allowance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import NoResultFound

from adesync.apple import AppleUnavailable
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.types import utcnow
from adesync.sync.clients import NoCredentials

__all__ = [
    "CONCURRENCY",
    "TIMEOUT_SECONDS",
    "CheckToken",
    "LiveCheck",
    "LiveOutcome",
    "RecordUnreachable",
    "check_tokens_live",
]

# Apple is asked about this many tokens at once, and each check gets this long.
CONCURRENCY = 8
TIMEOUT_SECONDS = 10.0

# One token's check: Apple's answer recorded on the token; (ok, error code).
CheckToken = Callable[[int], Awaitable[tuple[bool, str | None]]]
# Record that Apple could not be reached for a token in time (as a network failure is).
RecordUnreachable = Callable[[int], Awaitable[None]]


class LiveOutcome(StrEnum):
    """What the live check of one token did."""

    OK = "ok"  # Apple accepted the token
    ERROR = "error"  # Apple answered with an error, now recorded on the token
    UNREACHABLE = "unreachable"  # no answer in time: apple_unavailable recorded
    THROTTLED = "throttled"  # inside Apple's Retry-After: not called, stored state stands
    GONE = "gone"  # deleted (or its credentials removed) while the checks ran


@dataclass(frozen=True)
class LiveCheck:
    """One token's live check: ``error_code`` is Apple's (or ``apple_unavailable``)."""

    token_id: int
    name: str
    outcome: LiveOutcome
    error_code: str | None = None


@dataclass(frozen=True)
class _Due:
    token_id: int
    name: str
    throttled_until: datetime | None


async def _tokens(db: Database, token_id: int | None) -> list[_Due]:
    query = (
        select(tokens.c.id, tokens.c.name, tokens.c.throttled_until)
        .where(tokens.c.oauth_credentials.is_not(None))
        .order_by(tokens.c.name)
    )
    if token_id is not None:
        query = query.where(tokens.c.id == token_id)
    async with db.read() as session:
        return [_Due(int(i), str(n), t) for i, n, t in await session.execute(query)]


async def check_tokens_live(
    db: Database,
    check: CheckToken,
    record_unreachable: RecordUnreachable,
    *,
    token_id: int | None = None,
    concurrency: int = CONCURRENCY,
    seconds_per_token: float = TIMEOUT_SECONDS,
    now: Callable[[], datetime] = utcnow,
) -> list[LiveCheck]:
    """Check every token holding credentials (or only ``token_id``) with Apple now,
    ``concurrency`` at a time, each within ``seconds_per_token``; returns one
    :class:`LiveCheck` per token, by name. Re-evaluating the report afterwards is the
    caller's (each check already re-evaluated its own token)."""
    limit = asyncio.Semaphore(concurrency)

    async def one(token: _Due) -> LiveCheck:
        if token.throttled_until is not None and token.throttled_until > now():
            return LiveCheck(token.token_id, token.name, LiveOutcome.THROTTLED)
        async with limit:
            try:
                ok, code = await asyncio.wait_for(check(token.token_id), seconds_per_token)
            except TimeoutError:
                await record_unreachable(token.token_id)
                return LiveCheck(
                    token.token_id, token.name, LiveOutcome.UNREACHABLE, AppleUnavailable.code
                )
            except (NoResultFound, NoCredentials):
                return LiveCheck(token.token_id, token.name, LiveOutcome.GONE)
        outcome = LiveOutcome.OK if ok else LiveOutcome.ERROR
        return LiveCheck(token.token_id, token.name, outcome, code)

    due = await _tokens(db, token_id)
    # A failure that is not Apple's (the database) stops every check: the caller reports it.
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(token)) for token in due]
    except ExceptionGroup as failed:
        raise failed.exceptions[0]  # noqa: B904  (its own cause is the one to show)
    return [task.result() for task in tasks]
