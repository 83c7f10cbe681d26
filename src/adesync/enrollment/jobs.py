"""The enrollment work registered in :func:`adesync.wiring.install`: keeping device states in
step after each sync page, the periodic catch-up, and the enrollment URL probe."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from adesync.enrollment.probe import probe_profiles
from adesync.enrollment.state import refresh_due, refresh_serials, serials_with_events
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.store.types import utcnow
from adesync.sync.model import DeviceRecord

__all__ = [
    "PROBE_LEASE",
    "REFRESH_LEASE",
    "probe_job",
    "refresh_after_page",
    "refresh_job",
]

log = logging.getLogger("adesync.enrollment")

REFRESH_LEASE = "enrollment.refresh"
PROBE_LEASE = "enrollment.probe"


async def refresh_after_page(
    db: Database, token_id: int, kind: str, records: Sequence[DeviceRecord]
) -> None:
    """Re-derive the enrollment state of a committed page's devices that have events: a device
    new to adesync takes over the events recorded for its serial before it synced. (The
    others' state was written with the page: ``ENROLLMENT_STATE_COLUMN``.)"""
    serials = [record.serial_number for record in records]
    if not serials:
        return
    async with db.read() as session:
        with_events = await serials_with_events(session, serials)
    if with_events:
        async with db.write() as session:
            await refresh_serials(session, with_events, utcnow(), token_id=token_id)


async def refresh_job(db: Database, box: SecretBox) -> None:
    """The periodic catch-up of :func:`adesync.enrollment.state.refresh_due`."""
    async with db.write() as session:
        touched = await refresh_due(session, utcnow())
    if touched:
        log.info("re-derived the enrollment state of %d devices", touched)


async def probe_job(db: Database, box: SecretBox) -> None:
    """Probe the enrollment URLs that are due (each at most hourly)."""
    results = await probe_profiles(db)
    for url, result in results.items():
        if not result.ok:
            log.warning(
                "enrollment URL %s failed its probe: %s",
                url,
                result.error,
                extra={"event": "enrollment.probe_failed"},
            )
