"""The scheduler: claims due tokens under leases and syncs them, bounded, forever.

Any number of schedulers (``adesync serve`` in-process, ``adesync worker`` processes on many
machines) may share one database: each claims due tokens with a lease, renews it while working
and releases it with the next due time. A killed scheduler's leases expire and another one takes
its tokens. Each writes a heartbeat so health can tell when none runs, and runs the periodic
jobs of :data:`adesync.sync.hooks.PERIODIC` under named leases, one scheduler at a time (first
its own: runs left ``running`` by a worker that died are marked ``interrupted``). Stopping,
it cancels the syncs it runs, which record their runs ``interrupted`` and give their leases
back (:func:`adesync.sync.engine.sync_token`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from adesync.config import Settings
from adesync.store.database import Database
from adesync.store.lease_repo import (
    beat,
    claim_due_tokens,
    claim_named_lease,
    forget_worker,
    new_worker_id,
    release_all,
)
from adesync.store.run_repo import mark_interrupted_runs
from adesync.store.secrets import SecretBox
from adesync.store.sync_repo import PageEvents
from adesync.store.types import utcnow
from adesync.sync import hooks
from adesync.sync.clients import ClientFactory
from adesync.sync.service import SyncService

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
PERIODIC_SECONDS = 60.0
INTERRUPTED_RUNS_LEASE = "sync.interrupted_runs"
AFTER_SYNC_BATCH = 50
AFTER_SYNC_SECONDS = 2.0


class Scheduler:
    """Syncs due tokens, at most ``concurrency`` at a time, until ``stop`` is set."""

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        settings: Settings,
        *,
        concurrency: int = 4,
        kind: str = "worker",
        make_client: ClientFactory | None = None,
        now: Callable[[], datetime] = utcnow,
        poll_seconds: float | None = None,
        page_events: PageEvents | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.concurrency = max(1, concurrency)
        self.kind = kind
        self.now = now
        self.worker = new_worker_id(kind)
        self.poll_seconds = poll_seconds or settings.scheduler_poll_seconds
        self.service = SyncService(
            db,
            box,
            settings,
            make_client=make_client,
            now=now,
            worker=self.worker,
            page_events=page_events,
        )
        self.box = box
        self.running: set[asyncio.Task[None]] = set()
        self.synced = 0
        # Tokens synced whose after-sync hooks (health, metrics) have not run yet: they run for
        # many tokens at once, outside the leases (see flush_after_sync).
        self.after_sync_pending: list[int] = []
        self.after_sync_since = 0.0
        self.stop = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then the syncs under way are cancelled (each records its
        run ``interrupted``) and every lease is given back before it returns."""
        self.stop = stop
        started = self.now()
        last_beat = 0.0
        last_periodic = 0.0
        loop = asyncio.get_running_loop()
        log.info("scheduler %s started (concurrency %d)", self.worker, self.concurrency)
        try:
            while not stop.is_set():
                if loop.time() - last_beat >= HEARTBEAT_SECONDS:
                    await beat(
                        self.db, self.worker, self.kind, self.concurrency, started, self.now()
                    )
                    last_beat = loop.time()
                if loop.time() - last_periodic >= PERIODIC_SECONDS:
                    await self.run_periodic()
                    last_periodic = loop.time()
                claimed = await self.tick()
                await self.flush_after_sync()
                if not claimed:
                    wait = self.poll_seconds
                    if self.after_sync_pending:  # come back when they are due
                        wait = min(wait, AFTER_SYNC_SECONDS)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=wait)
                else:
                    await asyncio.sleep(0)
        finally:
            for task in list(self.running):
                task.cancel()
            await asyncio.gather(*self.running, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.flush_after_sync(force=True)
            with contextlib.suppress(Exception):
                # A task cancelled before it started never released the lease it was given.
                await release_all(self.db, self.worker)
                await forget_worker(self.db, self.worker)
            log.info("scheduler %s stopped after %d syncs", self.worker, self.synced)

    async def tick(self) -> int:
        """Claim as many due tokens as there is room for and start syncing them (when every
        slot is busy, first wait for one to free up); returns how many were claimed."""
        if len(self.running) >= self.concurrency:
            # Claim again as soon as a sync ends: returning 0 here would make run() wait a whole
            # poll period while tokens may be due (4 slots per 5 s was a worker's pace).
            await self._wait_for_a_slot()
            if self.stop.is_set():
                return 0
        room = self.concurrency - len(self.running)
        ids = await claim_due_tokens(
            self.db, self.worker, room, self.now(), self.settings.lease_seconds
        )
        for token_id in ids:
            task = asyncio.create_task(self._sync(token_id))
            self.running.add(task)
            task.add_done_callback(self.running.discard)
        if not ids and self.running:
            # Wait for a slot to free up rather than polling the database.
            await self._wait_for_a_slot()
        return len(ids)

    async def _wait_for_a_slot(self) -> None:
        """Until a running sync ends or the scheduler is told to stop (a stopping worker does
        not wait for a long fetch to end: run() cancels it)."""
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({*self.running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()

    async def flush_after_sync(self, *, force: bool = False) -> None:
        """Run the after-sync hooks for the tokens synced since the last time: when
        AFTER_SYNC_BATCH are waiting, when the oldest has waited AFTER_SYNC_SECONDS, when no
        sync is running, or with ``force``. One health evaluation of many tokens costs about
        what one of a single token does."""
        pending = self.after_sync_pending
        if not pending:
            return
        waited = asyncio.get_running_loop().time() - self.after_sync_since
        if not (
            force
            or len(pending) >= AFTER_SYNC_BATCH
            or waited >= AFTER_SYNC_SECONDS
            or not self.running
        ):
            return
        self.after_sync_pending = []
        await self.service.after_token_sync(pending)

    async def _sync(self, token_id: int) -> None:
        try:
            await self.service.run_leased(token_id, trigger="schedule", after_sync=False)
            if not self.after_sync_pending:
                self.after_sync_since = asyncio.get_running_loop().time()
            self.after_sync_pending.append(token_id)
            self.synced += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sync of token %s failed unexpectedly", token_id)

    async def run_periodic(self) -> None:
        try:
            if await claim_named_lease(
                self.db, INTERRUPTED_RUNS_LEASE, self.worker, self.now(), PERIODIC_SECONDS
            ):
                closed = await mark_interrupted_runs(self.db, self.now())
                if closed:
                    log.warning("marked %d sync runs of stopped workers as interrupted", closed)
        except Exception:
            log.exception("periodic job %s failed", INTERRUPTED_RUNS_LEASE)
        for name, job in hooks.PERIODIC:
            try:
                if await claim_named_lease(
                    self.db, name, self.worker, self.now(), PERIODIC_SECONDS
                ):
                    await job(self.db, self.box)
            except Exception:
                log.exception("periodic job %s failed", name)
