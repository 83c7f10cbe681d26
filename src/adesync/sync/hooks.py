"""Extension points the sync engine calls; :mod:`adesync.wiring` fills them at start-up.

Sync does not import health, notify or enrollment (they sit beside it); the composition root
registers their functions here instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.sync.model import DerivedDeviceColumn, DeviceRecord

AfterTokenSync = Callable[[Database, SecretBox, Sequence[int]], Awaitable[None]]
Periodic = Callable[[Database, SecretBox], Awaitable[None]]
OnPageCommitted = Callable[[Database, int, str, Sequence[DeviceRecord]], Awaitable[None]]


# Called with the tokens just synced or checked: one at a time by ``adesync sync``/``check``,
# the console and the API (before they answer); in batches by the scheduler, after it gave
# their leases back.
AFTER_TOKEN_SYNC: list[AfterTokenSync] = []
# Called once per scheduler period by one scheduler at a time (named leases).
PERIODIC: list[tuple[str, Periodic]] = []
# Called after each committed page with the device records of that page.
ON_PAGE_COMMITTED: list[OnPageCommitted] = []
# Columns written with every page's devices (read when a SyncRepo is made).
DERIVED_DEVICE_COLUMNS: list[DerivedDeviceColumn] = []
# Told of every attempt at a call to Apple by the clients of stored tokens: the Apple path and
# ``ok`` or the error code (``adesync.apple.AnswerObserver``).
ON_APPLE_ANSWER: list[Callable[[str, str], None]] = []


def apple_answered(endpoint: str, code: str) -> None:
    """The ``on_answer`` of the clients adesync makes: tells every ON_APPLE_ANSWER observer."""
    for observe in ON_APPLE_ANSWER:
        observe(endpoint, code)


def clear() -> None:
    AFTER_TOKEN_SYNC.clear()
    PERIODIC.clear()
    ON_PAGE_COMMITTED.clear()
    DERIVED_DEVICE_COLUMNS.clear()
    ON_APPLE_ANSWER.clear()
