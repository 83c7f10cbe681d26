"""Check now and sync now: the token actions that ask Apple about a stored token, once for the
CLI, the API and the console.

A check proves the token (``/session`` + ``/account``): success clears the credential findings
at once and, for a token that was failing, makes the next sync due now with the manual-sync
allowance whole; an error is recorded as a sync's would be. Health is re-evaluated before the
action returns. A check never uses the manual-sync allowance. Inside Apple's ``Retry-After``
neither a check nor a manual sync (without ``force``) calls Apple: they are skipped with the
time Apple named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from adesync.health.jobs import evaluate_after_sync
from adesync.services.apple_account import check_failed
from adesync.services.token_errors import TokenNotFound
from adesync.services.token_model import check_name
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.sync.clients import NoCredentials
from adesync.sync.engine import Progress
from adesync.sync.service import SyncReport, SyncService

__all__ = [
    "CheckOutcome",
    "CheckResult",
    "check_token",
    "sync_token_now",
    "sync_tokens",
    "token_id",
]


class CheckOutcome(StrEnum):
    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"  # inside Apple's Retry-After: Apple was not called


@dataclass(frozen=True)
class CheckResult:
    """What a check learned: ``error_code`` is the finding code Apple's answer maps to."""

    token: str
    outcome: CheckOutcome
    checked_at: datetime
    error_code: str | None = None
    message: str | None = None
    next_allowed_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is CheckOutcome.OK

    def as_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "ok": self.ok,
            "outcome": self.outcome.value,
            "error_code": self.error_code,
            "message": self.message,
            "checked_at": self.checked_at,
            "next_allowed_at": self.next_allowed_at,
        }


async def token_id(db: Database, name: str) -> int:
    """The id of token ``name``; TokenNotFound if there is none."""
    check_name(name)
    async with db.read() as session:
        found = (await session.execute(select(tokens.c.id).where(tokens.c.name == name))).scalar()
    if found is None:
        raise TokenNotFound(name)
    return int(found)


async def check_token(sync: SyncService, name: str) -> CheckResult:
    """Check token ``name`` with Apple now, record what Apple said, re-evaluate its health."""
    ident = await token_id(sync.db, name)
    state = await sync.repo.load_state(ident)
    if state.credentials is None:
        raise NoCredentials(name)
    now = sync.now()
    if state.throttled_until is not None and state.throttled_until > now:
        return CheckResult(
            token=name,
            outcome=CheckOutcome.SKIPPED,
            checked_at=now,
            error_code="apple_throttled",
            message=f"Apple asked adesync to wait before calling again for token {name}.",
            next_allowed_at=state.throttled_until,
        )
    error = await sync.check_account(ident)
    await evaluate_after_sync(sync.db, sync.box, [ident])
    if error is None:
        return CheckResult(token=name, outcome=CheckOutcome.OK, checked_at=sync.now())
    return CheckResult(
        token=name,
        outcome=CheckOutcome.ERROR,
        checked_at=sync.now(),
        error_code=error.code,
        message=check_failed(error, state.dep_url).message,
        next_allowed_at=error.retry_at,
    )


async def sync_tokens(
    sync: SyncService,
    names: Sequence[str] | None,
    *,
    full: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> list[SyncReport]:
    """Manual syncs of the named tokens (every token holding credentials when None), one after
    another, each as :func:`sync_token_now`; an unknown name is refused before any runs."""
    return await sync.sync_named(names, full=full, force=force, progress=progress)


async def sync_token_now(
    sync: SyncService, name: str, *, full: bool = False, force: bool = False
) -> SyncReport:
    """A manual sync of token ``name``: skipped within the manual-sync allowance or Apple's
    ``Retry-After`` unless ``force``; a sync that reached Apple uses the allowance."""
    return await sync.sync_now(await token_id(sync.db, name), full=full, force=force)
