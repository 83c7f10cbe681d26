"""Login rate limiting: failed sign-ins per name and per client address, in a sliding window.

Kept in memory of the one ``serve`` process: enough to make password guessing slow; several
``serve`` processes each keep their own count.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

__all__ = ["LoginLimiter"]


class LoginLimiter:
    """At most ``per_name`` failures for one (address, name) and ``per_address`` failures from
    one address within ``window`` seconds; past that, sign-in is refused until the oldest
    failure leaves the window."""

    def __init__(
        self,
        *,
        per_name: int = 5,
        per_address: int = 20,
        window: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_name = per_name
        self.per_address = per_address
        self.window = window
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = self._clock()
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, address: str, name: str) -> int:
        """Seconds until a sign-in may be tried again (0 = now)."""
        waits = []
        for key, limit in (
            ((address, name.lower()), self.per_name),
            ((address, ""), self.per_address),
        ):
            failures = self._recent(key)
            if len(failures) >= limit:
                waits.append(failures[len(failures) - limit] + self.window - self._clock())
        return max(0, math.ceil(max(waits))) if waits else 0

    def failed(self, address: str, name: str) -> None:
        now = self._clock()
        for key in ((address, name.lower()), (address, "")):
            self._failures.setdefault(key, deque()).append(now)
        if len(self._failures) > 100_000:  # forget the oldest addresses rather than grow forever
            for stale in list(self._failures)[:50_000]:
                del self._failures[stale]

    def succeeded(self, address: str, name: str) -> None:
        self._failures.pop((address, name.lower()), None)
