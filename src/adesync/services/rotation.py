"""``secrets rotate``: re-seal every secret under a new key without ever losing a key.

The order is what makes it safe. Under the rotation lock, the new key is written to disk (file,
then directory, fsynced) before the transaction that re-seals the secrets commits; after the
commit the old key is kept as ``secret.key.old-<UTC>`` and the new one becomes ``secret.key``
by rename. Whenever the process dies, a key that opens the database is on disk, and readers
(:func:`adesync.store.keyfiles.choose_key`) find it. The next rotation, holding the lock,
finishes or sets aside what an interrupted one left (:func:`finish_interrupted`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adesync.barriers import pause
from adesync.config import Settings
from adesync.errors import AdesyncError
from adesync.store.database import Database
from adesync.store.keycheck import rotate_secrets, stored_key_check, verify_key
from adesync.store.keyfiles import KeyFiles, read_if_present
from adesync.store.rotation_lock import rotation_lock
from adesync.store.secrets import (
    SecretBox,
    SecretKeyError,
    load_box,
    write_key_file,
    write_new_key_file,
)

__all__ = [
    "NewKeyFileMisused",
    "NewKeyFileRequired",
    "Rotation",
    "finish_interrupted",
    "rotate_key",
]

# Barriers a test may pause at (adesync.barriers): inside the re-sealing transaction before it
# commits, and after the commit before the key files are renamed.
BEFORE_COMMIT = "secrets-rotate-before-commit"
AFTER_COMMIT = "secrets-rotate-after-commit"


class NewKeyFileRequired(AdesyncError):
    """With ADESYNC_SECRET_KEY set, the new key needs a file to be written to before commit."""

    code = "new_key_file_required"

    def __init__(self) -> None:
        super().__init__(
            "ADESYNC_SECRET_KEY is set, so the new key must be written to a file of your "
            "choosing before the secrets are re-sealed; nothing was changed.",
        )


class NewKeyFileMisused(AdesyncError):
    """A new-key file was named although the key lives in secret.key."""

    code = "new_key_file_unused"

    def __init__(self, key_file: Path) -> None:
        super().__init__(
            f"A file for the new key is only for installations that set ADESYNC_SECRET_KEY; "
            f"this one keeps its key in {key_file}, where the new key goes too. Nothing was "
            "changed.",
            data={"key_file": str(key_file)},
        )


@dataclass
class Rotation:
    """What a rotation did: values re-sealed, where the new key is, where the old one was kept,
    and what it did about a rotation interrupted earlier (sentences)."""

    moved: int
    new_key_file: Path
    old_key_file: Path | None = None
    recovered: list[str] = field(default_factory=list)


async def finish_interrupted(files: KeyFiles, db: Database) -> list[str]:
    """With the rotation lock held: a pending key that opens the database becomes current (the
    rotation committed); one that does not is set aside (it never committed). Returns what was
    done, in sentences."""
    try:
        pending = read_if_present(files.pending)
    except SecretKeyError:  # damaged: it cannot be the database's key, so it is set aside
        pending = None
        aside = files.set_pending_aside()
        return [f"Set aside an unreadable pending key of an interrupted rotation as {aside}."]
    if pending is None:
        return []
    async with db.read() as session:
        check = await stored_key_check(session)
    if check == pending.key_check:
        kept = files.promote_pending()
        where = f"; the key it replaced is kept as {kept}" if kept else ""
        return [f"Finished an interrupted rotation: its new key is now {files.current}{where}."]
    aside = files.set_pending_aside()
    return [f"Set aside the unused key of a rotation that never committed as {aside}."]


async def _rotate_key_file(files: KeyFiles, db: Database) -> Rotation:
    recovered = await finish_interrupted(files, db)
    old = load_box(None, files.current)
    await verify_key(db, old)
    new = SecretBox.generate()
    write_key_file(files.pending, new)  # on disk before the commit
    moved = await rotate_secrets(db, old, new, before_commit=lambda: pause(BEFORE_COMMIT))
    await pause(AFTER_COMMIT)
    kept = files.promote_pending()
    return Rotation(moved, files.current, kept, recovered)


async def _rotate_env_key(secret_key: str, new_key_file: Path, db: Database) -> Rotation:
    old = SecretBox.from_text(secret_key, source="ADESYNC_SECRET_KEY")
    await verify_key(db, old)
    new = SecretBox.generate()
    write_new_key_file(new_key_file, new)  # on disk before the commit
    moved = await rotate_secrets(db, old, new, before_commit=lambda: pause(BEFORE_COMMIT))
    await pause(AFTER_COMMIT)
    return Rotation(moved, new_key_file)


async def rotate_key(settings: Settings, db: Database, new_key_file: Path | None) -> Rotation:
    """Re-seal every secret under a new key, holding the rotation lock throughout (a second
    rotation raises RotationRunning and changes nothing). With ``ADESYNC_SECRET_KEY`` set the
    new key is written to ``new_key_file`` (required, created 0600, never overwritten)."""
    files = KeyFiles(settings.secret_key_file)
    if settings.secret_key and new_key_file is None:
        raise NewKeyFileRequired()
    if not settings.secret_key and new_key_file is not None:
        raise NewKeyFileMisused(files.current)
    async with rotation_lock(db, files.lock):
        if settings.secret_key and new_key_file is not None:
            return await _rotate_env_key(settings.secret_key, new_key_file, db)
        return await _rotate_key_file(files, db)
