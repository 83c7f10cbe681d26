"""The per-token fetch → sync state machine.

- A full fetch runs when the token has no cursor, when forced, or after Apple answers
  ``EXPIRED_CURSOR``/``INVALID_CURSOR`` (then the run is marked ``cursor_recovered``).
  ``EXHAUSTED_CURSOR`` on a fetch switches to sync with the same cursor.
- Pages are requested while ``more_to_follow``; the run stops if the cursor does not move.
  The next page is requested while the current one is being written (one page ahead), and a
  fetch page's rows are built then too (on SQLite the page is written by another process, so
  both run at once).
- A committed page's hooks (``on_page``) run while the next page is committed; the run ends
  after the last page's.
- Each page's devices and its cursor are committed together (see :mod:`adesync.store.sync_repo`),
  so a run killed anywhere resumes from the last committed page.
- A cancelled run (a signal, a scheduler stopping) finishes the page it is writing, records
  itself ``interrupted`` with its totals and re-raises; the CLI, the worker and ``serve`` all
  stop runs this way.
- Every Apple error is recorded on the token; a success clears its flags.
- Any other failure (the database unreachable, a full disk, a dead page writer, a defect) ends
  the run ``error`` with the finding code ``sync_failing`` and a detail code (see
  :mod:`adesync.store.failures`), recorded on the run and on the token as an Apple error is (so
  the next attempt backs off); the traceback goes to the log under a short reference. When even
  that cannot be written (the database is gone), the run stays ``running`` until its lease ends
  and a claim or the scheduler's sweep closes it ``interrupted``.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from adesync.apple import AppleError, Device, DevicePage
from adesync.store.failures import DATABASE_UNAVAILABLE, DISK_FULL, failure_detail
from adesync.store.sync_repo import LeaseLost, PreparedFetchPage
from adesync.sync.assigner import Assigner
from adesync.sync.model import (
    APPLE_DEVICE_FIELDS,
    DeviceRecord,
    PageResult,
    RunOutcome,
    RunTotals,
    TokenSyncState,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

Progress = Callable[[str, RunTotals], None]
# Builds a fetch page's rows ahead of its commit (SyncStore.prepare_fetch_page, bound).
Prepare = Callable[[Sequence[DeviceRecord]], PreparedFetchPage]
# Called after each committed page with (token id, fetch|sync, the page's device records).
OnPage = Callable[[int, str, Sequence[DeviceRecord]], Awaitable[None]]


class DeviceListing(Protocol):
    """The Apple calls the state machine needs (``adesync.apple.AppleClient`` has them)."""

    @property
    def clock_skew_seconds(self) -> float | None: ...

    async def fetch_devices(
        self, cursor: str | None = None, limit: int | None = None
    ) -> DevicePage: ...

    async def sync_devices(self, cursor: str, limit: int | None = None) -> DevicePage: ...


class SyncStore(Protocol):
    """Storage for the state machine (``adesync.store.sync_repo.SyncRepo`` implements it)."""

    async def start_full_fetch(self, token_id: int, worker: str, at: datetime) -> None: ...

    async def commit_page(
        self,
        token_id: int,
        worker: str,
        records: Sequence[DeviceRecord],
        cursor: str,
        *,
        fetch_started_at: datetime | None,
        completes_fetch: bool,
        now: datetime,
        assigning: bool = True,
        prepared: PreparedFetchPage | None = None,
    ) -> PageResult: ...

    def prepare_fetch_page(
        self,
        token_id: int,
        records: Sequence[DeviceRecord],
        fetch_started_at: datetime,
        now: datetime,
    ) -> PreparedFetchPage: ...

    async def start_run(self, token_id: int, trigger: str, worker: str, now: datetime) -> int: ...

    async def finish_run(
        self,
        run_id: int,
        totals: RunTotals,
        outcome: str,
        error_code: str | None,
        started_at: datetime,
        now: datetime,
        *,
        error_detail: str | None = None,
        error_reference: str | None = None,
    ) -> None: ...

    async def record_success(
        self, token_id: int, now: datetime, clock_skew: float | None, *, synced: bool
    ) -> None: ...

    async def record_error(
        self,
        token_id: int,
        code: str,
        status: int | None,
        body: str,
        now: datetime,
        *,
        clock_skew: float | None,
        throttled_until: datetime | None,
        synced: bool,
        detail: str | None = None,
        reference: str | None = None,
    ) -> int: ...


@dataclass
class SyncOutcome:
    """How one token's run ended (``outcome``: ok, error or throttled)."""

    token_id: int
    token: str
    outcome: str
    totals: RunTotals = field(default_factory=RunTotals)
    error_code: str | None = None
    error_message: str | None = None
    retry_at: datetime | None = None
    consecutive_failures: int = 0
    run_id: int | None = None
    # With error_code sync_failing: what failed, and the reference of the log line about it.
    error_detail: str | None = None
    error_reference: str | None = None


_record_values = operator.attrgetter(*APPLE_DEVICE_FIELDS)


def to_record(device: Device) -> DeviceRecord:
    op_type = device.op_type
    return DeviceRecord(
        device.serial_number,
        _record_values(device),
        op_type.lower() if op_type else None,
        device.op_date,
    )


async def sync_token(
    state: TokenSyncState,
    client: DeviceListing,
    store: SyncStore,
    worker: str,
    *,
    trigger: str,
    full: bool,
    now: Callable[[], datetime],
    assigner: Assigner | None = None,
    progress: Progress | None = None,
    on_page: OnPage | None = None,
) -> SyncOutcome:
    """Sync one token (its lease must be held by ``worker``); never raises but CancelledError:
    every other failure is the outcome (see the module doc).

    Cancelled (a signal stopping the process, a scheduler shutting down), it records the run
    ``interrupted`` with its totals so far, then re-raises ``CancelledError``: the pages
    committed stay, and the next run goes on from the stored cursor."""
    started = now()
    run_id = await store.start_run(state.token_id, trigger, worker, started)
    totals = RunTotals()
    outcome = SyncOutcome(
        token_id=state.token_id, token=state.name, outcome="ok", totals=totals, run_id=run_id
    )
    try:
        await _pages(state, client, store, worker, full, now, assigner, totals, progress, on_page)
        if assigner is not None:
            totals.assigned += await assigner.retry_due()
    except asyncio.CancelledError:
        log.info("sync of token %s interrupted after %d pages", state.name, totals.pages)
        finish = store.finish_run(run_id, totals, RunOutcome.INTERRUPTED, None, started, now())
        await asyncio.shield(finish)  # a second cancellation does not stop the recording
        raise
    except AppleError as error:
        outcome.outcome = "throttled" if error.code == "apple_throttled" else "error"
        outcome.error_code = error.code
        outcome.error_message = str(error)
        outcome.retry_at = error.retry_at
        log.warning("sync of token %s ended with %s", state.name, error.code)
        await _record_apple_error(state, client, store, outcome, error, now)
    except LeaseLost:
        outcome.outcome = "error"
        outcome.error_code = "lease_lost"
        outcome.error_message = "Another worker took this token over; this run stopped."
    except Exception as error:
        await _failed(state, store, outcome, error, now)
    else:
        try:
            await store.record_success(
                state.token_id, now(), client.clock_skew_seconds, synced=True
            )
        except Exception as error:
            await _failed(state, store, outcome, error, now)
    await _finish(state, store, run_id, totals, outcome, started, now)
    return outcome


async def _finish(
    state: TokenSyncState,
    store: SyncStore,
    run_id: int,
    totals: RunTotals,
    outcome: SyncOutcome,
    started: datetime,
    now: Callable[[], datetime],
) -> None:
    """Record the run's end; a run whose end cannot be written is left to the sweep."""
    try:
        await store.finish_run(
            run_id,
            totals,
            outcome.outcome,
            outcome.error_code,
            started,
            now(),
            error_detail=outcome.error_detail,
            error_reference=outcome.error_reference,
        )
    except Exception as error:
        if outcome.error_code != "sync_failing":
            await _failed(state, store, outcome, error, now)
        log.error(
            "the end of the sync of token %s could not be recorded (%s); the run is closed "
            "interrupted once its lease ends",
            state.name,
            failure_detail(error),
        )


async def _record_apple_error(
    state: TokenSyncState,
    client: DeviceListing,
    store: SyncStore,
    outcome: SyncOutcome,
    error: AppleError,
    now: Callable[[], datetime],
) -> None:
    try:
        outcome.consecutive_failures = await store.record_error(
            state.token_id,
            error.code,
            error.status,
            error.body,
            now(),
            clock_skew=client.clock_skew_seconds,
            throttled_until=error.retry_at,
            synced=True,
        )
    except Exception as again:
        log.error(
            "Apple's %s for token %s could not be recorded (%s)",
            error.code,
            state.name,
            failure_detail(again),
        )


_FAILURE_SENTENCES = {
    DATABASE_UNAVAILABLE: "the database could not be reached or stopped answering",
    DISK_FULL: "the disk that holds the database is full",
}


async def _failed(
    state: TokenSyncState,
    store: SyncStore,
    outcome: SyncOutcome,
    error: Exception,
    now: Callable[[], datetime],
) -> None:
    """Make ``outcome`` the run's failure on ``error`` (not Apple's answer) and record it on
    the token if the database lets it; the traceback goes to the log under a reference."""
    detail = failure_detail(error)
    reference = secrets.token_hex(4)
    log.error(
        "sync of token %s failed: %s (log reference %s)",
        state.name,
        detail,
        reference,
        exc_info=error,
    )
    cause = _FAILURE_SENTENCES.get(detail, f"an internal error (log reference {reference})")
    outcome.outcome = "error"
    outcome.error_code = "sync_failing"
    outcome.error_detail = detail
    outcome.error_reference = reference
    outcome.error_message = (
        f"The sync failed on this server, not at Apple: {cause}; the devices written so far "
        "are kept and the next sync goes on from them."
    )
    try:
        outcome.consecutive_failures = await store.record_error(
            state.token_id,
            "sync_failing",
            None,
            type(error).__name__,
            now(),
            clock_skew=None,
            throttled_until=None,
            synced=True,
            detail=detail,
            reference=reference,
        )
    except Exception as again:
        log.error(
            "the failure of the sync of token %s could not be recorded on it either (%s)",
            state.name,
            failure_detail(again),
        )


async def _pages(
    state: TokenSyncState,
    client: DeviceListing,
    store: SyncStore,
    worker: str,
    full: bool,
    now: Callable[[], datetime],
    assigner: Assigner | None,
    totals: RunTotals,
    progress: Progress | None,
    on_page: OnPage | None,
) -> None:
    cursor = state.cursor
    fetch_started = state.fetch_started_at
    if full or (cursor is None and fetch_started is None):
        fetch_started = now()
        cursor = None
        await _whole(store.start_full_fetch(state.token_id, worker, fetch_started))
    assigning = assigner is not None and state.default_profile_uuid is not None

    def prepare() -> Prepare | None:
        """For a fetch page, how to build its rows (None: the next page is a sync page)."""
        started = fetch_started
        if started is None:
            return None
        return lambda records: store.prepare_fetch_page(state.token_id, records, started, now())

    ahead: asyncio.Task[tuple[DevicePage, list[DeviceRecord], PreparedFetchPage | None]] | None
    ahead = None
    hooks_running: asyncio.Future[None] | None = None
    try:
        while True:
            try:
                if ahead is not None:
                    task, ahead = ahead, None
                    page, records, prepared = await task
                else:
                    page, records, prepared = await _request(
                        client, cursor, fetch_started is not None
                    )
            except AppleError as error:
                if error.code == "cursor_exhausted" and fetch_started is not None and cursor:
                    # The fetch had returned every device: close it and go on with sync.
                    await _whole(
                        store.commit_page(
                            state.token_id,
                            worker,
                            [],
                            cursor,
                            fetch_started_at=fetch_started,
                            completes_fetch=True,
                            now=now(),
                        )
                    )
                    fetch_started = None
                    continue
                if (
                    error.code in ("cursor_expired", "cursor_invalid")
                    and not totals.cursor_recovered
                ):
                    totals.cursor_recovered = True
                    fetch_started = now()
                    cursor = None
                    await _whole(store.start_full_fetch(state.token_id, worker, fetch_started))
                    continue
                raise
            if page.more_to_follow and page.cursor != cursor:
                # Ask for the next page while this one is written (its answer, or its error,
                # is taken only after this page is committed).
                ahead = asyncio.create_task(
                    _request(client, page.cursor, fetch_started is not None, prepare())
                )
            if fetch_started is not None:
                totals.kind = "fetch"
            completes_fetch = fetch_started is not None and not page.more_to_follow
            commit = store.commit_page(
                state.token_id,
                worker,
                records,
                page.cursor,
                fetch_started_at=fetch_started,
                completes_fetch=completes_fetch,
                now=now(),
                assigning=assigning,
                prepared=prepared,
            )
            result = await _whole(_counted(commit, totals, len(records)))
            if on_page is not None and records:
                # A page's hooks run beside the next page's commit, one page's at a time.
                if hooks_running is not None:
                    await hooks_running
                hooks_running = asyncio.ensure_future(
                    on_page(state.token_id, "fetch" if fetch_started else "sync", records)
                )
            if assigner is not None and state.default_profile_uuid and result.to_assign:
                totals.assigned += await assigner.assign(
                    state.default_profile_uuid, result.to_assign
                )
            if progress is not None:
                progress(state.name, totals)
            moved = page.cursor != cursor
            cursor = page.cursor
            if page.more_to_follow:
                if not moved:
                    log.warning("token %s: Apple's cursor did not move; stopping", state.name)
                    return
                continue
            if fetch_started is not None:
                fetch_started = None  # the fetch is complete: ask for what changed since
                continue
            return
    finally:
        if ahead is not None:
            ahead.cancel()
            await asyncio.gather(ahead, return_exceptions=True)
        if hooks_running is not None:
            await hooks_running


async def _whole(write: Awaitable[T]) -> T:
    """Await a database write to its end even if the run is cancelled meanwhile, then let the
    cancellation go on: a page and its cursor are committed whole or not at all, and the run
    counts the page it committed before it stopped."""
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # a write that failed meanwhile: the cancellation is what goes on
        raise


async def _counted(commit: Awaitable[PageResult], totals: RunTotals, devices: int) -> PageResult:
    """A page's commit, added to the run's totals as soon as it is done."""
    result = await commit
    totals.add_page(result, devices)
    return result


async def _request(
    client: DeviceListing, cursor: str | None, fetching: bool, prepare: Prepare | None = None
) -> tuple[DevicePage, list[DeviceRecord], PreparedFetchPage | None]:
    """The next page and its records (converted here, while the previous page is written),
    and with ``prepare`` (a fetch page asked for ahead) its rows too."""
    if fetching:
        page = await client.fetch_devices(cursor=cursor)
    else:
        assert cursor is not None
        page = await client.sync_devices(cursor=cursor)
    records = [to_record(device) for device in page.devices]
    if prepare is None or not records:
        return page, records, None
    await asyncio.sleep(0)  # let the loop take the page writer's answers in between
    return page, records, prepare(records)
