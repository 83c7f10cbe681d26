"""When to try a call to Apple again, and how long to wait first.

Two kinds of waiting: Apple said how long (429, or 503 with ``Retry-After``) — honoured up to a
cap, beyond which the caller gets ``apple_throttled`` with the time it ends; or Apple (or the
network) failed without saying — bounded exponential backoff with jitter, then
``apple_unavailable``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

__all__ = ["RetryPolicy", "parse_http_date", "parse_retry_after"]

_LONGEST_WAIT_SECONDS = 366 * 24 * 3600
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a call gets and how long the pauses between them are.

    ``max_attempts`` bounds every call (throttled or failed); ``max_retry_after`` is the longest
    ``Retry-After`` worth sleeping through; backoff before attempt *n+1* is
    ``min(backoff_max, backoff_base * 2**(n-1))`` scaled by a random factor in [0.5, 1].
    ``sleep`` is injectable so tests never wait.
    """

    max_attempts: int = 4
    max_retry_after: float = 30.0
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    sleep: Sleep = asyncio.sleep
    jitter: Callable[[], float] = field(default=random.random)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_retry_after < 0:
            raise ValueError("max_retry_after must not be negative")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2.0 ** (attempt - 1)))
        return ceiling * (0.5 + 0.5 * self.jitter())


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP date (``Date``, ``Retry-After``) as aware UTC; ``None`` if absent or unreadable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_retry_after(
    value: str | None, *, now: datetime, apple_date: datetime | None = None
) -> datetime | None:
    """When Apple's ``Retry-After`` ends, on the local clock (aware UTC), or ``None``.

    Accepts delta-seconds (``120``) and HTTP dates. An HTTP date is measured against Apple's own
    ``Date`` header when there is one, so a skewed local clock does not stretch or cut the wait.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        # Bounded so an absurd value cannot overflow the datetime arithmetic.
        return now + timedelta(seconds=min(int(text), _LONGEST_WAIT_SECONDS))
    moment = parse_http_date(text)
    if moment is None:
        return None
    reference = apple_date if apple_date is not None else now
    return now + max(timedelta(0), moment - reference)
