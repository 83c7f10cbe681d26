"""The key files in ``ADESYNC_HOME`` and how a process picks the one that opens the database.

- ``secret.key``: the current key.
- ``secret.key.new``: the pending key, written (and fsynced) by ``secrets rotate`` before its
  transaction commits; after the commit it becomes ``secret.key`` by rename.
- ``secret.key.old-<UTC>``: the key a rotation replaced, kept until the admin removes it.
- ``secret.key.unused-<UTC>``: the pending key of a rotation that never committed, set aside.

Only ``secrets rotate``, holding the rotation lock (:mod:`adesync.store.rotation_lock`),
renames or writes these files. Every other process only reads them: :func:`choose_key` takes
the current or the pending key, whichever the database's key check names.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from adesync.store.database import Database
from adesync.store.keycheck import key_mismatch, stored_key_check
from adesync.store.secrets import (
    SecretBox,
    SecretKeyError,
    fsync_directory,
    key_missing,
    read_key_file,
    write_key_file,
)

__all__ = ["KeyFiles", "choose_key", "key_not_created", "read_if_present"]

# A reader that saw the files before a rotation wrote its pending key and the key check after
# that rotation committed looks once more; two more looks cover any interleaving.
_LOOKS = 3


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class KeyFiles:
    """The key files of one home."""

    current: Path

    @classmethod
    def in_home(cls, home: Path) -> KeyFiles:
        return cls(home / "secret.key")

    @property
    def home(self) -> Path:
        return self.current.parent

    @property
    def pending(self) -> Path:
        return self.current.with_name("secret.key.new")

    @property
    def lock(self) -> Path:
        return self.current.with_name("secret.key.lock")

    def _free_name(self, kind: str) -> Path:
        base = self.current.with_name(f"secret.key.{kind}-{_stamp()}")
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        return path

    def promote_pending(self) -> Path | None:
        """Make the pending key current (rotation lock held): the current key is kept under
        ``secret.key.old-<UTC>`` (returned; None when there was none). At every moment a
        reader finds the pending key under one of its names."""
        kept: Path | None = None
        if self.current.exists():
            kept = self._free_name("old")
            try:
                os.link(self.current, kept)  # the same 0600 file under a second name
            except OSError:  # a file system without hard links
                write_key_file(kept, read_key_file(self.current))
        os.replace(self.pending, self.current)
        fsync_directory(self.home)
        return kept

    def set_pending_aside(self) -> Path:
        """Move a pending key that never opened the database out of the way (never deleted)."""
        aside = self._free_name("unused")
        os.replace(self.pending, aside)
        fsync_directory(self.home)
        return aside


def read_if_present(path: Path) -> SecretBox | None:
    """The key in ``path``, or None when there is no such file."""
    if not path.exists():
        return None
    try:
        return read_key_file(path)
    except SecretKeyError:
        if not path.exists():  # renamed away between the two looks
            return None
        raise


def key_not_created(path: Path) -> SecretKeyError:
    """No key file, and the database holds no secrets yet: the installation is not set up."""
    return SecretKeyError(
        f"No secret key: {path} does not exist and ADESYNC_SECRET_KEY is not set; "
        "run `adesync init` to set up this installation.",
        code="secret_key_missing",
    )


async def choose_key(files: KeyFiles, db: Database) -> SecretBox:
    """The key that opens the database: the current key, or the pending key of a rotation that
    committed but has not renamed it yet. Reads the files only; never renames or writes one."""
    for look in range(_LOOKS):
        # The pending key first: a rotation renames it to secret.key, so a reader that finds
        # no pending file then finds the new key as the current one.
        pending = read_if_present(files.pending)
        current = read_if_present(files.current)
        async with db.read() as session:
            check = await stored_key_check(session)
        if check is None:  # no secret sealed yet
            if current is None:
                raise key_not_created(files.current)
            return current
        for box in (current, pending):
            if box is not None and box.key_check == check:
                return box
        if look < _LOOKS - 1:
            await asyncio.sleep(0.05)
    if current is None and pending is None:
        raise key_missing(files.current)
    raise key_mismatch()
