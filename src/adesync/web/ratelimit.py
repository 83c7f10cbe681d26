"""Console sign-in limiting, in the database so that every ``serve`` process shares the counts.

Per name, across every address: from the 6th failure within 15 minutes each answer waits
2^(n-5) seconds (n counts this attempt), at most 60: guessing one user's password slows to one
guess a minute, and that user still signs in (slowly), never locked out. Per address: 50
failures within 15 minutes and the address is refused (429) until the oldest leaves the window.

An attempt is written as a failure when it starts and removed when it succeeds, so attempts
sent at once each count the ones before them, and the wait comes before the password is
checked (an attacker cannot stop waiting once a wrong guess is known).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from adesync.store.database import Database
from adesync.store.tables_web import login_failures
from adesync.store.types import utcnow

__all__ = ["LoginLimiter"]


@dataclass
class LoginLimiter:
    """``free`` failures per name go unslowed; after them each waits ``2 ** (n - free)``
    seconds up to ``max_wait``; ``per_address`` failures from one address within ``window``
    refuse it. ``sleep`` is how a wait is spent (tests record it)."""

    free: int = 5
    max_wait: float = 60.0
    per_address: int = 50
    window: timedelta = timedelta(minutes=15)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    def wait_for(self, failures: int) -> float:
        """Seconds an attempt waits when it would be the ``failures``-th failure of its name."""
        if failures <= self.free:
            return 0.0
        return min(self.max_wait, 2.0 ** min(failures - self.free, 32))

    async def admit(self, db: Database, address: str, name: str) -> int:
        """Start a sign-in attempt: 0 once it may check the password (after its wait), else
        the seconds until ``address`` may try again (the attempt is then not counted)."""
        now = utcnow()
        cutoff = now - self.window
        async with db.write() as session:
            await session.execute(delete(login_failures).where(login_failures.c.at <= cutoff))
            oldest_counted: datetime | None = (
                await session.execute(
                    select(login_failures.c.at)
                    .where(login_failures.c.address == address[:64])
                    .where(login_failures.c.at > cutoff)
                    .order_by(login_failures.c.at.desc())
                    .offset(self.per_address - 1)
                    .limit(1)
                )
            ).scalar()
            if oldest_counted is not None:
                left = (oldest_counted + self.window - now).total_seconds()
                return max(1, math.ceil(left))
            await session.execute(
                login_failures.insert().values(name=_key(name), address=address[:64], at=now)
            )
            failures = (
                await session.execute(
                    select(func.count())
                    .select_from(login_failures)
                    .where(login_failures.c.name == _key(name))
                    .where(login_failures.c.at > cutoff)
                )
            ).scalar_one()
        wait = self.wait_for(failures)
        if wait > 0:
            await self.sleep(wait)
        return 0

    async def succeeded(self, db: Database, address: str, name: str) -> None:
        """The attempt from ``address`` was right: forget the name's failures from there."""
        async with db.write() as session:
            await session.execute(
                delete(login_failures)
                .where(login_failures.c.name == _key(name))
                .where(login_failures.c.address == address[:64])
            )


def _key(name: str) -> str:
    return name.lower()[:64]
