"""``check_tokens_live`` with its one-token check swapped for a stand-in: how many checks run at
once, which tokens are called, and what happens when a check takes too long."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import delete

from adesync.services.diagnose import CONCURRENCY, LiveCheck, LiveOutcome, check_tokens_live
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.types import utcnow
from tests.health.factory import add_token


class StandIn:
    """A check that answers after ``pause`` seconds and notes how many ran at once."""

    def __init__(self, pause: float = 0.02, *, slow: frozenset[int] = frozenset()) -> None:
        self.pause = pause
        self.slow = slow
        self.running = 0
        self.most = 0
        self.checked: list[int] = []
        self.unreachable: list[int] = []

    async def check(self, token_id: int) -> tuple[bool, str | None]:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(60 if token_id in self.slow else self.pause)
        finally:
            self.running -= 1
        self.checked.append(token_id)
        return (token_id % 2 == 0, None if token_id % 2 == 0 else "terms_not_accepted")

    async def record_unreachable(self, token_id: int) -> None:
        self.unreachable.append(token_id)


async def test_eight_at_a_time_and_every_token_once(db: Database) -> None:
    ids = [await add_token(db, f"t{i:02d}") for i in range(20)]
    stand_in = StandIn()
    results = await check_tokens_live(db, stand_in.check, stand_in.record_unreachable)
    assert stand_in.most == CONCURRENCY == 8
    assert sorted(stand_in.checked) == ids
    assert [r.name for r in results] == [f"t{i:02d}" for i in range(20)]
    assert {r.outcome for r in results} == {LiveOutcome.OK, LiveOutcome.ERROR}
    assert all((r.outcome is LiveOutcome.ERROR) == (r.error_code is not None) for r in results)


async def test_throttled_tokens_and_tokens_without_credentials_are_not_called(
    db: Database,
) -> None:
    waiting = await add_token(db, "waiting", throttled_until=utcnow() + timedelta(minutes=5))
    over = await add_token(db, "over", throttled_until=utcnow() - timedelta(minutes=5))
    await add_token(db, "pending", oauth_credentials=None)
    stand_in = StandIn()
    results = await check_tokens_live(db, stand_in.check, stand_in.record_unreachable)
    assert stand_in.checked == [over]
    assert {r.name: r.outcome for r in results}["waiting"] is LiveOutcome.THROTTLED
    assert [r.name for r in results] == ["over", "waiting"]
    assert waiting not in stand_in.checked


async def test_a_check_over_its_time_is_recorded_unreachable(db: Database) -> None:
    quick = await add_token(db, "quick")
    slow = await add_token(db, "slow")
    stand_in = StandIn(slow=frozenset({slow}))
    results = await check_tokens_live(
        db, stand_in.check, stand_in.record_unreachable, seconds_per_token=0.2
    )
    assert results[1] == LiveCheck(slow, "slow", LiveOutcome.UNREACHABLE, "apple_unavailable")
    assert (results[0].token_id, results[0].outcome) != (quick, LiveOutcome.UNREACHABLE)
    assert (stand_in.checked, stand_in.unreachable) == ([quick], [slow])


async def test_token_id_narrows_the_checks(db: Database) -> None:
    await add_token(db, "a")
    b = await add_token(db, "b")
    stand_in = StandIn()
    results = await check_tokens_live(db, stand_in.check, stand_in.record_unreachable, token_id=b)
    assert (stand_in.checked, [r.name for r in results]) == ([b], ["b"])


async def test_a_token_deleted_while_checked_is_gone(db: Database) -> None:
    token_id = await add_token(db, "short-lived")

    async def check(checked: int) -> tuple[bool, str | None]:
        from sqlalchemy.exc import NoResultFound

        async with db.write() as session:
            await session.execute(delete(tokens).where(tokens.c.id == checked))
        raise NoResultFound("gone")

    async def unreachable(checked: int) -> None:
        raise AssertionError("not a timeout")

    (result,) = await check_tokens_live(db, check, unreachable)
    assert (result.token_id, result.outcome) == (token_id, LiveOutcome.GONE)


async def test_a_database_failure_stops_the_checks_and_is_raised(db: Database) -> None:
    for name in ("a", "b", "c"):
        await add_token(db, name)

    async def check(checked: int) -> tuple[bool, str | None]:
        raise OSError("disk full")

    async def unreachable(checked: int) -> None:
        raise AssertionError("not a timeout")

    with pytest.raises(OSError, match="disk full"):
        await check_tokens_live(db, check, unreachable)
