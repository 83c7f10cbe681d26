from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from adesync.config import load_settings
from adesync.store.database import Database
from adesync.store.lease_repo import (
    claim_due_tokens,
    claim_named_lease,
    claim_token,
    release_all,
    release_token,
    renew_token_lease,
)
from adesync.store.run_repo import mark_interrupted_runs
from adesync.store.secrets import SecretBox
from adesync.store.sync_repo import SyncRepo
from adesync.store.tables_sync import sync_runs
from adesync.sync.policy import Intervals, next_sync_at
from tests.sync.helpers import T0, insert_token

INTERVALS = Intervals.from_settings(load_settings())


def test_ok_runs_come_back_after_the_sync_interval() -> None:
    due = next_sync_at(
        INTERVALS, T0, outcome="ok", error_code=None, consecutive_failures=0, retry_at=None
    )
    assert due == T0 + timedelta(minutes=30)


def test_pending_assignment_retries_bring_the_next_sync_forward() -> None:
    soon = T0 + timedelta(minutes=1)
    due = next_sync_at(
        INTERVALS,
        T0,
        outcome="ok",
        error_code=None,
        consecutive_failures=0,
        retry_at=None,
        assignment_retry_at=soon,
    )
    assert due == soon


def test_throttling_waits_exactly_as_apple_asks() -> None:
    resume = T0 + timedelta(seconds=437)
    due = next_sync_at(
        INTERVALS,
        T0,
        outcome="throttled",
        error_code="apple_throttled",
        consecutive_failures=3,
        retry_at=resume,
    )
    assert due == resume


def test_errors_the_admin_must_fix_are_retried_hourly() -> None:
    for code in ("token_rejected", "access_denied", "terms_not_accepted"):
        due = next_sync_at(
            INTERVALS, T0, outcome="error", error_code=code, consecutive_failures=9, retry_at=None
        )
        assert due == T0 + timedelta(hours=1)


def test_other_errors_back_off_exponentially_up_to_six_hours() -> None:
    waits = [
        next_sync_at(
            INTERVALS,
            T0,
            outcome="error",
            error_code="apple_unavailable",
            consecutive_failures=n,
            retry_at=None,
        )
        - T0
        for n in (1, 2, 3, 20)
    ]
    assert waits[:3] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert waits[3] == timedelta(hours=6)


async def test_due_tokens_are_claimed_by_one_worker_only(db: Database, box: SecretBox) -> None:
    for i in range(10):
        await insert_token(db, box, f"t{i}", lease_owner=None)
    first, second = await asyncio.gather(
        claim_due_tokens(db, "w1", 6, T0, 60), claim_due_tokens(db, "w2", 6, T0, 60)
    )
    assert not set(first) & set(second)
    assert len(first) + len(second) == 10
    # Leased tokens are not due again until released or expired.
    assert await claim_due_tokens(db, "w3", 10, T0, 60) == []
    assert len(await claim_due_tokens(db, "w3", 10, T0 + timedelta(seconds=61), 60)) == 10


async def test_leases_renew_release_and_refuse_others(db: Database, box: SecretBox) -> None:
    token_id = await insert_token(db, box, lease_owner=None)
    assert await claim_token(db, token_id, "w1", T0, 60)
    assert not await claim_token(db, token_id, "w2", T0, 60)
    assert await renew_token_lease(db, token_id, "w1", T0 + timedelta(seconds=50), 60)
    assert not await claim_token(db, token_id, "w2", T0 + timedelta(seconds=70), 60)
    assert not await renew_token_lease(db, token_id, "w2", T0, 60)
    await release_token(db, token_id, "w1", T0 + timedelta(minutes=30))
    assert await claim_due_tokens(db, "w2", 5, T0, 60) == []
    assert await claim_due_tokens(db, "w2", 5, T0 + timedelta(minutes=31), 60) == [token_id]


async def test_named_leases_let_one_scheduler_run_a_periodic_job(db: Database) -> None:
    assert await claim_named_lease(db, "health", "w1", T0, 60)
    assert not await claim_named_lease(db, "health", "w2", T0 + timedelta(seconds=30), 60)
    assert await claim_named_lease(db, "health", "w2", T0 + timedelta(seconds=61), 60)


async def test_a_stopping_scheduler_gives_back_every_lease_it_holds(
    db: Database, box: SecretBox
) -> None:
    for i in range(3):
        await insert_token(db, box, f"t{i}", lease_owner=None)
    assert len(await claim_due_tokens(db, "w1", 3, T0, 600)) == 3
    assert await claim_named_lease(db, "health", "w1", T0, 600)
    await release_all(db, "w1")
    assert len(await claim_due_tokens(db, "w2", 3, T0, 600)) == 3
    assert await claim_named_lease(db, "health", "w2", T0, 600)


async def test_runs_of_stopped_workers_are_marked_interrupted(db: Database, box: SecretBox) -> None:
    repo = SyncRepo(db, box)
    held = await insert_token(db, box, "held", lease_owner="w1")  # lease valid for an hour
    taken = await insert_token(db, box, "taken", lease_owner="w2")
    again = await insert_token(db, box, "again", lease_owner="w1")
    live = await repo.start_run(held, "schedule", "w1", T0)
    lost = await repo.start_run(taken, "schedule", "w1", T0)  # w2 holds it now
    older = await repo.start_run(again, "schedule", "w1", T0)
    newest = await repo.start_run(again, "schedule", "w1", T0 + timedelta(minutes=1))

    assert await mark_interrupted_runs(db, T0 + timedelta(minutes=2)) == 2
    assert await outcomes(db) == {
        live: "running",
        lost: "interrupted",
        older: "interrupted",
        newest: "running",
    }
    # Once the lease has expired, nothing is left running.
    assert await mark_interrupted_runs(db, T0 + timedelta(hours=2)) == 2
    assert set((await outcomes(db)).values()) == {"interrupted"}


async def outcomes(db: Database) -> dict[int, str]:
    async with db.read() as session:
        rows = await session.execute(select(sync_runs.c.id, sync_runs.c.outcome))
        return {run_id: outcome for run_id, outcome in rows}


async def test_claiming_a_token_whose_lease_expired_closes_the_dead_run(
    db: Database, box: SecretBox
) -> None:
    """A process that died mid-run (SIGKILL) left its run ``running``: the next process of any
    kind that claims the token once the lease has expired closes it, in the same transaction."""
    repo = SyncRepo(db, box)
    by_hand = await insert_token(db, box, "by-hand", lease_owner="dead-cli")  # an hour's lease
    scheduled = await insert_token(db, box, "scheduled", lease_owner="dead-worker")
    dead_cli = await repo.start_run(by_hand, "manual", "dead-cli", T0)
    dead_worker = await repo.start_run(scheduled, "schedule", "dead-worker", T0)

    # While the lease lasts the run may still be alive: no claim, nothing closed.
    assert not await claim_token(db, by_hand, "cli", T0 + timedelta(minutes=30), 60)
    assert await claim_due_tokens(db, "worker", 5, T0 + timedelta(minutes=30), 60) == []
    assert set((await outcomes(db)).values()) == {"running"}

    expired = T0 + timedelta(hours=2)
    assert await claim_token(db, by_hand, "cli", expired, 60)
    assert await claim_due_tokens(db, "worker", 5, expired, 60) == [scheduled]
    assert await outcomes(db) == {dead_cli: "interrupted", dead_worker: "interrupted"}
    async with db.read() as session:
        finished = await session.execute(select(sync_runs.c.finished_at))
        assert set(finished.scalars()) == {expired}

    # One run per token, the claimer's own included: its live lease is not claimed again.
    mine = await repo.start_run(by_hand, "manual", "cli", expired)
    assert not await claim_token(db, by_hand, "cli", expired, 60)
    # The claimer's own runs are its to finish: a claim under its id leaves them running.
    await release_token(db, by_hand, "cli", None)
    assert await claim_token(db, by_hand, "cli", expired, 60)
    assert (await outcomes(db))[mine] == "running"
