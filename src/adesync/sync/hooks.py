"""Extension points the sync engine calls; :mod:`adesync.wiring` fills them at start-up.

Sync does not import health or notify (they sit beside it); the composition root registers
their functions here instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from adesync.store.database import Database
from adesync.store.secrets import SecretBox

AfterTokenSync = Callable[[Database, SecretBox, int], Awaitable[None]]
Periodic = Callable[[Database, SecretBox], Awaitable[None]]
OnPageCommitted = Callable[[Database, int, str, list[dict[str, Any]]], Awaitable[None]]

# Called after each token's sync or check, still inside the token's lease.
AFTER_TOKEN_SYNC: list[AfterTokenSync] = []
# Called once per scheduler period by one scheduler at a time (named leases).
PERIODIC: list[tuple[str, Periodic]] = []
# Called after each committed page with the device records of that page.
ON_PAGE_COMMITTED: list[OnPageCommitted] = []


def clear() -> None:
    AFTER_TOKEN_SYNC.clear()
    PERIODIC.clear()
    ON_PAGE_COMMITTED.clear()
