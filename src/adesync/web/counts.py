"""Live-device counts per token, for listings (with a short-lived cache)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from adesync.store.database import Database
from adesync.store.tables_sync import devices

__all__ = ["COUNT_TTL", "LISTING_TTL", "CountCache", "ListingCache", "device_counts"]


async def device_counts(db: Database, token_ids: list[int]) -> dict[int, int]:
    """Live devices per token."""
    if not token_ids:
        return {}
    query = (
        select(devices.c.token_id, func.count())
        .where(devices.c.token_id.in_(token_ids), devices.c.deleted.is_(False))
        .group_by(devices.c.token_id)
    )
    async with db.read() as session:
        return {int(tid): int(n) for tid, n in await session.execute(query)}


COUNT_TTL = 15.0


class CountCache:
    """Live-device counts per token, kept for COUNT_TTL seconds: the token list shows them on
    every page, and counting a token's devices is the costliest part of that page."""

    def __init__(self, ttl: float = COUNT_TTL) -> None:
        self.ttl = ttl
        self._counts: dict[int, tuple[int, float]] = {}

    async def counts(self, db: Database, token_ids: list[int]) -> dict[int, int]:
        now = time.monotonic()
        fresh = {
            tid: hit[0]
            for tid in token_ids
            if (hit := self._counts.get(tid)) is not None and now - hit[1] < self.ttl
        }
        missing = [tid for tid in token_ids if tid not in fresh]
        if missing:
            counted = await device_counts(db, missing)
            for tid in missing:
                fresh[tid] = counted.get(tid, 0)
                self._counts[tid] = (fresh[tid], now)
        return fresh

    def clear(self) -> None:
        self._counts.clear()


LISTING_TTL = 3.0


class ListingCache:
    """Pages of the token list, kept for LISTING_TTL seconds and dropped at once when this
    process changes a token: a dashboard many people reload need not re-read 100 tokens each
    time (changes made by other processes show within the TTL)."""

    def __init__(self, ttl: float = LISTING_TTL) -> None:
        self.ttl = ttl
        self._pages: dict[tuple[object, ...], tuple[float, Any]] = {}

    def get(self, key: tuple[object, ...]) -> Any | None:
        hit = self._pages.get(key)
        if hit is None or time.monotonic() - hit[0] >= self.ttl:
            return None
        return hit[1]

    def put(self, key: tuple[object, ...], value: Any) -> None:
        if len(self._pages) > 1000:  # bounded: forget everything rather than grow
            self._pages.clear()
        self._pages[key] = (time.monotonic(), value)

    def clear(self) -> None:
        self._pages.clear()
