"""Extension points the sync engine calls; :mod:`adesync.wiring` fills them at start-up.

Sync does not import health, notify or enrollment (they sit beside it); the composition root
registers their functions here instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.sync.model import DerivedDeviceColumn, DeviceRecord

AfterTokenSync = Callable[[Database, SecretBox, int], Awaitable[None]]
Periodic = Callable[[Database, SecretBox], Awaitable[None]]
OnPageCommitted = Callable[[Database, int, str, Sequence[DeviceRecord]], Awaitable[None]]


# Called after each token's sync or check, still inside the token's lease.
AFTER_TOKEN_SYNC: list[AfterTokenSync] = []
# Called once per scheduler period by one scheduler at a time (named leases).
PERIODIC: list[tuple[str, Periodic]] = []
# Called after each committed page with the device records of that page.
ON_PAGE_COMMITTED: list[OnPageCommitted] = []
# Columns written with every page's devices (read when a SyncRepo is made).
DERIVED_DEVICE_COLUMNS: list[DerivedDeviceColumn] = []


def clear() -> None:
    AFTER_TOKEN_SYNC.clear()
    PERIODIC.clear()
    ON_PAGE_COMMITTED.clear()
    DERIVED_DEVICE_COLUMNS.clear()
