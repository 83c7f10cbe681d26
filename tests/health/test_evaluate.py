"""Stored state: findings with first/last seen, token state columns, transitions and scope."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.health import ON_TRANSITION, State, Transition, evaluate, read_health
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_health import findings
from tests.health.factory import NOW, add_token, beat


@pytest.fixture
def transitions() -> Iterator[list[Transition]]:
    """Every transition announced while the test runs."""
    seen: list[Transition] = []

    async def listen(session: AsyncSession, changes: Sequence[Transition]) -> None:
        seen.extend(changes)

    ON_TRANSITION.append(listen)
    yield seen
    ON_TRANSITION.remove(listen)


async def stored(db: Database) -> dict[tuple[int | None, str], object]:
    async with db.read() as session:
        rows = (await session.execute(select(findings))).all()
    return {(row.token_id, row.code): row for row in rows}


async def token_row(db: Database, token_id: int) -> object:
    async with db.read() as session:
        return (await session.execute(select(tokens).where(tokens.c.id == token_id))).one()


async def expire(db: Database, token_id: int, when: object) -> None:
    async with db.write() as session:
        await session.execute(
            update(tokens).where(tokens.c.id == token_id).values(access_token_expiry=when)
        )


async def test_first_seen_is_kept_and_last_seen_moves(db: Database) -> None:
    token_id = await add_token(db, default_profile_uuid=None)
    await beat(db, NOW + timedelta(hours=2))
    await evaluate(db, now=NOW)
    later = NOW + timedelta(hours=1)
    await evaluate(db, now=later)
    row = (await stored(db))[(token_id, "no_default_profile")]
    assert row.first_seen_at == NOW  # type: ignore[attr-defined]
    assert row.last_seen_at == later  # type: ignore[attr-defined]


async def test_state_columns_and_transitions(db: Database, transitions: list[Transition]) -> None:
    token_id = await add_token(db)
    await beat(db, NOW + timedelta(days=3))
    await evaluate(db, now=NOW)
    row = await token_row(db, token_id)
    assert (row.state, row.state_reason) == ("healthy", None)  # type: ignore[attr-defined]
    assert transitions == []  # a new healthy token is nothing to announce

    await expire(db, token_id, NOW + timedelta(days=10))
    t1 = NOW + timedelta(minutes=5)
    await evaluate(db, now=t1)
    row = await token_row(db, token_id)
    assert (row.state, row.state_reason, row.state_changed_at) == (  # type: ignore[attr-defined]
        "warning",
        "token_expiring",
        t1,
    )
    (change,) = transitions
    assert (change.old_state, change.new_state) == (State.HEALTHY, State.WARNING)
    assert change.added == ["token_expiring"]

    # Same state and codes again: no transition, state_changed_at unchanged.
    await evaluate(db, now=t1 + timedelta(minutes=5))
    assert len(transitions) == 1
    assert (await token_row(db, token_id)).state_changed_at == t1  # type: ignore[attr-defined]

    await expire(db, token_id, NOW)
    t2 = NOW + timedelta(minutes=20)
    await evaluate(db, now=t2)
    change = transitions[-1]
    assert (change.old_state, change.new_state) == (State.WARNING, State.ERROR)
    assert (change.added, change.cleared) == (["token_expired"], ["token_expiring"])
    assert (await stored(db)).keys() == {(token_id, "token_expired")}


async def test_a_new_code_in_the_same_state_is_a_transition(
    db: Database, transitions: list[Transition]
) -> None:
    token_id = await add_token(db, terms_not_accepted=True)
    await beat(db, NOW)
    await evaluate(db, now=NOW)
    await expire(db, token_id, NOW - timedelta(days=1))
    await evaluate(db, now=NOW)
    assert [(c.old_state, c.new_state, c.added) for c in transitions] == [
        (None, State.ERROR, ["terms_not_accepted"]),
        (State.ERROR, State.ERROR, ["token_expired"]),
    ]


async def test_info_findings_are_not_announced(db: Database, transitions: list[Transition]) -> None:
    token_id = await add_token(db)
    await beat(db, NOW)
    await evaluate(db, now=NOW)
    async with db.write() as session:
        await session.execute(
            update(tokens)
            .where(tokens.c.id == token_id)
            .values(throttled_until=NOW + timedelta(minutes=1))
        )
    health = await evaluate(db, now=NOW)
    assert [s.finding.code for s in health.tokens[0].findings] == ["apple_throttled"]
    assert transitions == []


async def test_one_token_scope_leaves_others_alone(db: Database) -> None:
    a = await add_token(db, "a", default_profile_uuid=None)
    b = await add_token(db, "b", default_profile_uuid=None)
    await evaluate(db, token_id=a, now=NOW)
    assert (await stored(db)).keys() == {(a, "no_default_profile")}  # no scheduler_down either
    await evaluate(db, now=NOW)
    assert (await stored(db)).keys() == {
        (a, "no_default_profile"),
        (b, "no_default_profile"),
        (None, "scheduler_down"),
    }
    health = await evaluate(db, token_id=b, now=NOW + timedelta(hours=1))
    assert [t.label.name for t in health.tokens] == ["b"]
    keys = await stored(db)
    assert keys[(a, "no_default_profile")].last_seen_at == NOW  # type: ignore[attr-defined]
    assert keys[(None, "scheduler_down")].last_seen_at == NOW  # type: ignore[attr-defined]


async def test_read_health_gives_back_what_was_stored(db: Database) -> None:
    await add_token(db, "a", access_token_expiry=NOW - timedelta(days=1), default_profile_uuid=None)
    await add_token(db, "b")
    evaluated = await evaluate(db, now=NOW)
    read = await read_health(db)
    assert [(t.label.name, t.state, t.state_reason) for t in read.tokens] == [
        ("a", State.ERROR, "token_expired"),
        ("b", State.HEALTHY, None),
    ]
    assert [s.finding for s in read.tokens[0].findings] == [
        s.finding for s in evaluated.tokens[0].findings
    ]
    assert [s.finding.code for s in read.installation] == ["scheduler_down"]


async def test_concurrent_evaluations_store_one_row_per_code(db: Database) -> None:
    for name in ("a", "b", "c"):
        await add_token(db, name, default_profile_uuid=None)
    token_ids = [1, 2, 3]
    await asyncio.gather(
        evaluate(db, now=NOW),
        *(evaluate(db, token_id=t, now=NOW) for t in token_ids),
        evaluate(db, now=NOW),
    )
    keys = await stored(db)
    assert sorted(k for k in keys if k[0] is not None) == [
        (1, "no_default_profile"),
        (2, "no_default_profile"),
        (3, "no_default_profile"),
    ]
