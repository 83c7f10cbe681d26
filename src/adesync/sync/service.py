"""Syncing tokens: the use cases behind ``adesync sync``, the console's "sync now", the
scheduler and "check now". Each run holds the token's lease for its whole length."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from adesync.apple import AppleClient, AppleError, AppleUnavailable
from adesync.config import Settings
from adesync.errors import NotFoundError
from adesync.store.assignment_repo import AssignmentRepo
from adesync.store.database import Database
from adesync.store.lease_repo import (
    claim_token,
    new_worker_id,
    release_token,
    renew_token_lease,
)
from adesync.store.secrets import SecretBox
from adesync.store.sync_repo import PageEvents, SyncRepo
from adesync.store.tables import tokens
from adesync.store.types import utcnow
from adesync.sync import hooks
from adesync.sync.assigner import Assigner
from adesync.sync.clients import ClientFactory, NoCredentials, client_factory
from adesync.sync.engine import OnPage, Progress, SyncOutcome, sync_token
from adesync.sync.model import DeviceRecord, RunTotals, TokenSyncState
from adesync.sync.policy import (
    Intervals,
    full_fetch_allowed_at,
    manual_sync_allowed_at,
    next_sync_at,
)
from adesync.sync.queries import running_run

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """One token's line in ``adesync sync --json``."""

    token: str
    outcome: str  # ok | error | throttled | skipped
    kind: str
    pages: int = 0
    added: int = 0
    modified: int = 0
    deleted: int = 0
    unchanged: int = 0
    assigned: int = 0
    error_code: str | None = None
    message: str | None = None
    next_allowed_at: datetime | None = None
    run_id: int | None = None  # the run (for sync_in_progress: the one under way)
    error_detail: str | None = None  # with error_code sync_failing: what failed

    def as_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "outcome": self.outcome,
            "kind": self.kind,
            "pages": self.pages,
            "added": self.added,
            "modified": self.modified,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "assigned": self.assigned,
            "error_code": self.error_code,
            "error_detail": self.error_detail,
            "message": self.message,
            "next_allowed_at": self.next_allowed_at,
            "run_id": self.run_id,
        }

    @classmethod
    def from_outcome(cls, outcome: SyncOutcome) -> SyncReport:
        totals = outcome.totals
        return cls(
            token=outcome.token,
            outcome=outcome.outcome,
            kind=totals.kind,
            pages=totals.pages,
            added=totals.added,
            modified=totals.modified,
            deleted=totals.deleted,
            unchanged=totals.unchanged,
            assigned=totals.assigned,
            error_code=outcome.error_code,
            message=outcome.error_message,
            next_allowed_at=outcome.retry_at,
            run_id=outcome.run_id,
            error_detail=outcome.error_detail,
        )


async def token_ids_by_name(db: Database, names: Sequence[str] | None) -> list[tuple[int, str]]:
    """(id, name) of the named tokens, or of every token holding credentials when None."""
    query = select(tokens.c.id, tokens.c.name).order_by(tokens.c.name)
    if names is None:
        query = query.where(tokens.c.oauth_credentials.is_not(None))
    else:
        query = query.where(tokens.c.name.in_(list(names)))
    async with db.read() as session:
        found = [(int(i), str(n)) for i, n in await session.execute(query)]
    if names is not None:
        missing = sorted(set(names) - {name for _, name in found})
        if missing:
            raise NotFoundError(
                f"There is no token named {missing[0]}; `adesync tokens list --all` shows them."
            )
        order = {name: i for i, name in enumerate(names)}
        found.sort(key=lambda pair: order[pair[1]])
    return found


class SyncService:
    """Runs syncs on one database; one instance per process (CLI, serve, worker)."""

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        settings: Settings,
        *,
        make_client: ClientFactory | None = None,
        now: Callable[[], datetime] = utcnow,
        worker: str | None = None,
        page_events: PageEvents | None = None,
    ) -> None:
        """``page_events``: what each page writes in its own transaction beside its devices and
        cursor (:func:`adesync.wiring.page_events`: the device events)."""
        self.db = db
        self.box = box
        self.settings = settings
        self.make_client = make_client or client_factory(settings)
        self.now = now
        self.worker = worker or new_worker_id("cli")
        self.repo = SyncRepo(db, box, hooks.DERIVED_DEVICE_COLUMNS, page_events)
        self.assignments = AssignmentRepo(db)
        self.intervals = Intervals.from_settings(settings)

    async def sync_named(
        self,
        names: Sequence[str] | None,
        *,
        full: bool = False,
        force: bool = False,
        trigger: str = "manual",
        progress: Progress | None = None,
    ) -> list[SyncReport]:
        """Sync tokens one after another (manual throttle unless ``force``)."""
        reports = []
        for token_id, _name in await token_ids_by_name(self.db, names):
            reports.append(
                await self.sync_now(
                    token_id, full=full, force=force, trigger=trigger, progress=progress
                )
            )
        return reports

    async def sync_now(
        self,
        token_id: int,
        *,
        full: bool = False,
        force: bool = False,
        trigger: str = "manual",
        progress: Progress | None = None,
    ) -> SyncReport:
        """A sync asked for by a person (or by adding a token): throttled, then leased."""
        state = await self.repo.load_state(token_id)
        if state.credentials is None:
            raise NoCredentials(state.name)
        now = self.now()
        kind = "fetch" if full else "sync"
        under_way = await running_run(self.db, token_id, now)
        if under_way is not None:
            return self._in_progress(state.name, kind, under_way)
        if trigger == "manual" and not force:
            if state.throttled_until is not None and state.throttled_until > now:
                return SyncReport(
                    token=state.name,
                    outcome="skipped",
                    kind=kind,
                    error_code="apple_throttled",
                    message=f"Apple asked adesync to wait before calling again for token "
                    f"{state.name}.",
                    next_allowed_at=state.throttled_until,
                )
            allowed = manual_sync_allowed_at(self.intervals, state.last_manual_sync_at)
            if allowed and allowed > now:
                return SyncReport(
                    token=state.name,
                    outcome="skipped",
                    kind=kind,
                    error_code="manual_sync_throttled",
                    message=f"Token {state.name} was synced by hand less than "
                    f"{self.settings.manual_sync_interval_minutes:g} minutes ago.",
                    next_allowed_at=allowed,
                )
            allowed_full = full_fetch_allowed_at(self.intervals, state.last_full_fetch_at)
            if full and allowed_full and allowed_full > now:
                return SyncReport(
                    token=state.name,
                    outcome="skipped",
                    kind=kind,
                    error_code="full_fetch_throttled",
                    message=f"Token {state.name} had a full fetch less than "
                    f"{self.settings.full_fetch_interval_days:g} days ago.",
                    next_allowed_at=allowed_full,
                )
        # The lease is claimed for this run alone: another run of this process (the scheduler
        # of `serve`, a second "sync now") holds its own and cannot share it.
        owner = f"{self.worker}/{uuid.uuid4().hex[:8]}"
        if not await claim_token(self.db, token_id, owner, now, self.settings.lease_seconds):
            return self._in_progress(state.name, kind, await running_run(self.db, token_id, now))
        outcome = await self.run_leased(
            token_id, trigger=trigger, full=full, progress=progress, owner=owner
        )
        return SyncReport.from_outcome(outcome)

    @staticmethod
    def _in_progress(name: str, kind: str, run_id: int | None) -> SyncReport:
        """A sync asked for while one runs: no second run; the one under way answers."""
        return SyncReport(
            token=name,
            outcome="skipped",
            kind=kind,
            error_code="sync_in_progress",
            message=f"Token {name} is being synced right now.",
            run_id=run_id,
        )

    async def run_leased(
        self,
        token_id: int,
        *,
        trigger: str,
        full: bool = False,
        progress: Progress | None = None,
        after_sync: bool = True,
        owner: str | None = None,
    ) -> SyncOutcome:
        """Sync a token whose lease ``owner`` (default: this worker) holds; releases it with the
        next due time. Without ``after_sync`` the caller runs the after-sync hooks itself (the
        scheduler does, for many tokens at once)."""
        owner = owner or self.worker
        state = await self.repo.load_state(token_id)
        try:
            async with self._renewing(token_id, owner):
                outcome = await self._run(
                    state, trigger=trigger, full=full, progress=progress, owner=owner
                )
                if after_sync:
                    await self.after_token_sync([token_id])
        except BaseException:
            await release_token(self.db, token_id, owner, None)
            raise
        try:
            retry = await self.assignments.next_retry_at(token_id)
            next_due = next_sync_at(
                self.intervals,
                self.now(),
                outcome=outcome.outcome,
                error_code=outcome.error_code,
                consecutive_failures=outcome.consecutive_failures,
                retry_at=outcome.retry_at,
                assignment_retry_at=retry,
            )
            await release_token(self.db, token_id, owner, next_due)
        except Exception:
            # The run's outcome stands; the lease ends on its own (the database is gone).
            log.exception("the lease of token %s could not be given back", state.name)
        return outcome

    async def _run(
        self,
        state: TokenSyncState,
        *,
        trigger: str,
        full: bool,
        progress: Progress | None,
        owner: str,
    ) -> SyncOutcome:
        if state.credentials is None:
            return SyncOutcome(
                token_id=state.token_id,
                token=state.name,
                outcome="error",
                totals=RunTotals(),
                error_code="no_credentials",
            )
        async with self.make_client(
            state.dep_url, state.credentials, checked=state.dep_url_checked
        ) as client:
            assigner = Assigner(client, self.assignments, self.repo, state.token_id, self.now)
            return await sync_token(
                state,
                client,
                self.repo,
                owner,
                trigger=trigger,
                full=full,
                now=self.now,
                assigner=assigner,
                progress=progress,
                on_page=self._on_page(),
            )

    def _on_page(self) -> OnPage | None:
        if not hooks.ON_PAGE_COMMITTED:
            return None

        async def on_page(token_id: int, kind: str, records: Sequence[DeviceRecord]) -> None:
            for hook in hooks.ON_PAGE_COMMITTED:
                try:
                    await hook(self.db, token_id, kind, records)
                except Exception:
                    log.exception("device event hook failed; the sync goes on")

        return on_page

    async def after_token_sync(self, token_ids: Sequence[int]) -> None:
        """The after-sync hooks (health, metrics) for tokens just synced or checked."""
        for hook in hooks.AFTER_TOKEN_SYNC:
            try:
                await hook(self.db, self.box, token_ids)
            except Exception:
                log.exception("after-sync hook failed; the sync result stands")

    async def check(self, token_id: int) -> tuple[bool, str | None]:
        """One ``/account`` call now (clears or confirms a flag), then the after-sync hooks;
        returns (ok, error code)."""
        error = await self.check_account(token_id)
        await self.after_token_sync([token_id])
        return error is None, error.code if error is not None else None

    async def check_account(self, token_id: int) -> AppleError | None:
        """Prove the token with Apple now (``/session`` + ``/account``) and record the answer:
        success clears the flags and the failure streak and, for a token that was failing,
        makes the next sync due now with the manual-sync allowance whole; an error is recorded
        as a sync's would be (it never uses the manual-sync allowance). Returns the error."""
        state = await self.repo.load_state(token_id)
        if state.credentials is None:
            raise NoCredentials(state.name)
        async with self.make_client(
            state.dep_url, state.credentials, checked=state.dep_url_checked
        ) as client:
            try:
                await client.account()
            except AppleError as error:
                await self.repo.record_error(
                    token_id,
                    error.code,
                    error.status,
                    error.body,
                    self.now(),
                    clock_skew=client.clock_skew_seconds,
                    throttled_until=error.retry_at,
                    synced=False,
                )
                return error
            await self.repo.record_success(
                token_id, self.now(), client.clock_skew_seconds, synced=False, proven=True
            )
        return None

    @contextlib.asynccontextmanager
    async def _renewing(self, token_id: int, owner: str) -> AsyncIterator[None]:
        """Keep the lease alive while the run works (renewed at a third of its length)."""
        period = self.settings.lease_seconds / 3

        async def renew() -> None:
            while True:
                await asyncio.sleep(period)
                try:
                    renewed = await renew_token_lease(
                        self.db, token_id, owner, self.now(), self.settings.lease_seconds
                    )
                except Exception:
                    # The database is unreachable now: try again next period (the run's own
                    # writes fail meanwhile and end it).
                    log.warning("could not renew the lease on token %s", token_id, exc_info=True)
                    continue
                if not renewed:
                    log.warning("lost the lease on token %s", token_id)
                    return

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def record_unreachable(self, token_id: int) -> None:
        """A check that got no answer from Apple in time: ``apple_unavailable`` is recorded on
        the token as a network failure records it (no status, no body), then the after-sync
        hooks run. The manual-sync allowance is untouched."""
        await self.repo.record_error(
            token_id,
            AppleUnavailable.code,
            None,
            "",
            self.now(),
            clock_skew=None,
            throttled_until=None,
            synced=False,
        )
        await self.after_token_sync([token_id])


def client_for(service: SyncService, state: TokenSyncState) -> AppleClient:
    if state.credentials is None:
        raise NoCredentials(state.name)
    return service.make_client(state.dep_url, state.credentials, checked=state.dep_url_checked)
