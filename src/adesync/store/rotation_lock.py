"""The lock ``secrets rotate`` holds for its whole length, so two rotations never overlap.

On SQLite it is an ``fcntl.flock`` on ``ADESYNC_HOME/secret.key.lock``; on PostgreSQL (many
machines, one database) a session advisory lock on a fixed key, held by a connection kept for
the rotation. A second rotation does not wait: it is refused with :class:`RotationRunning`.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import func, select

from adesync.errors import AdesyncError
from adesync.store.database import Database

__all__ = ["ADVISORY_LOCK_KEY", "RotationRunning", "rotation_lock"]

# A fixed 64-bit key for pg_advisory_lock: "adesync" rotation, spelt in hex.
ADVISORY_LOCK_KEY = 0x0ADE5_1C0_0000_0001


class RotationRunning(AdesyncError):
    """Another secret-key rotation holds the lock."""

    code = "rotation_running"
    http_status = 409

    def __init__(self) -> None:
        super().__init__(
            "Another secret-key rotation is running on this database; nothing was changed, "
            "wait for it to finish."
        )


@asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RotationRunning() from None
        yield
    finally:
        os.close(fd)  # closing the file releases the lock; the file stays (no unlink race)


@asynccontextmanager
async def _advisory_lock(db: Database) -> AsyncIterator[None]:
    async with db.engine.connect() as conn:
        got = (await conn.execute(select(func.pg_try_advisory_lock(ADVISORY_LOCK_KEY)))).scalar()
        await conn.commit()
        if not got:
            raise RotationRunning()
        try:
            yield
        finally:
            await conn.execute(select(func.pg_advisory_unlock(ADVISORY_LOCK_KEY)))
            await conn.commit()


@asynccontextmanager
async def rotation_lock(db: Database, lock_file: Path) -> AsyncIterator[None]:
    """Hold the rotation lock of ``db`` (``lock_file`` on SQLite) or raise RotationRunning."""
    lock = _advisory_lock(db) if db.is_postgresql else _file_lock(lock_file)
    async with lock:
        yield
