"""Backups: one archive, sealed with a passphrase, that a new installation can be rebuilt from.

The archive holds every token (key pairs, certificates, OAuth values, identity, type,
``dep_url``, default profile) with its profiles, the console users and API keys (their hashes),
the web layer's sealed secrets and ``notify.toml`` (the notification settings with their
secrets); not devices or history, which the next sync fetches again. It does not depend on
``secret.key``: secrets are opened when it is made and sealed under the target's key when it
is restored.

Format: a header (magic, format version, scrypt's n, r and p, salt, nonce), then the JSON
document, compressed, sealed with AES-256-GCM under a key that scrypt derives from the
passphrase; the header is authenticated with it.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from adesync import __version__
from adesync.errors import AdesyncError, ConflictError
from adesync.notify.settings import FILE_NAME as NOTIFY_FILE
from adesync.store.backup_rows import find_clashes, read_backup_rows, write_backup_rows
from adesync.store.database import Database
from adesync.store.secrets import SecretBox, fsync_directory

__all__ = [
    "BackupRefused",
    "BackupUnreadable",
    "RestoreClash",
    "Restored",
    "make_backup",
    "open_archive",
    "read_archive",
    "restore_backup",
    "seal_archive",
]

MAGIC = b"adesync-backup\n"
VERSION = 1
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1  # about 32 MiB and a tenth of a second
_HEADER = struct.Struct(">15sBIII16s12s")
_MAX_N, _MAX_R, _MAX_P = 2**20, 32, 16  # refuse parameters that would exhaust the machine
DOCUMENT_FORMAT = "adesync-backup"


class BackupUnreadable(AdesyncError):
    """The archive cannot be opened: not a backup, damaged, or another passphrase."""

    code = "backup_unreadable"


class BackupRefused(AdesyncError):
    """A backup cannot be made or restored as asked (no passphrase, ...)."""

    code = "backup_refused"


class RestoreClash(ConflictError):
    """The backup names tokens, users or API keys this installation already has."""

    code = "restore_clash"


@dataclass
class Restored:
    """How many of each thing a restore wrote, and whether it wrote notify.toml."""

    counts: dict[str, int]
    notify_settings: bool = False
    created_at: str | None = None
    replaced: dict[str, list[str]] = field(default_factory=dict)


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    if not passphrase:
        raise BackupRefused("The backup passphrase is empty; a backup needs a passphrase.")
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def seal_archive(document: dict[str, Any], passphrase: str) -> bytes:
    """The document as an archive sealed with ``passphrase``."""
    salt, nonce = os.urandom(16), os.urandom(12)
    header = _HEADER.pack(MAGIC, VERSION, SCRYPT_N, SCRYPT_R, SCRYPT_P, salt, nonce)
    key = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    body = zlib.compress(json.dumps(document, ensure_ascii=False).encode("utf-8"))
    return header + AESGCM(key).encrypt(nonce, body, header)


def _unreadable(why: str) -> BackupUnreadable:
    return BackupUnreadable(f"The backup cannot be read: {why}; nothing was changed.")


def open_archive(data: bytes, passphrase: str) -> dict[str, Any]:
    """The document of an archive; BackupUnreadable for a foreign, damaged or newer file or
    another passphrase (AES-GCM cannot tell a damaged body from a wrong passphrase)."""
    if len(data) < _HEADER.size + 16 or not data.startswith(MAGIC):
        raise _unreadable("it is not an adesync backup, or it is cut short")
    header = data[: _HEADER.size]
    _magic, version, n, r, p, salt, nonce = _HEADER.unpack(header)
    if version != VERSION:
        raise _unreadable(f"it is in format {version}, which this adesync does not know")
    if n < 2 or n & (n - 1) or n > _MAX_N or not 0 < r <= _MAX_R or not 0 < p <= _MAX_P:
        raise _unreadable("its header is damaged")
    key = _derive(passphrase, salt, n, r, p)
    try:
        body = AESGCM(key).decrypt(nonce, data[_HEADER.size :], header)
    except InvalidTag:
        raise _unreadable(
            "the passphrase is not the one it was made with, or it is damaged"
        ) from None
    try:
        document = json.loads(zlib.decompress(body))
    except (zlib.error, ValueError):
        raise _unreadable("its contents are damaged") from None
    if not isinstance(document, dict) or document.get("format") != DOCUMENT_FORMAT:
        raise _unreadable("its contents are not an adesync backup")
    return document


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically and durably."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


async def make_backup(
    db: Database, box: SecretBox, home: Path, target: Path, passphrase: str
) -> dict[str, int]:
    """Write the archive of this installation to ``target`` (mode 0600, atomically); returns
    how many tokens, profiles, users and API keys it holds."""
    async with db.read() as session:
        rows = await read_backup_rows(session, box)
    notify_file = home / NOTIFY_FILE
    document = {
        "format": DOCUMENT_FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "adesync_version": __version__,
        "notify_toml": notify_file.read_text("utf-8") if notify_file.exists() else None,
        **rows,
    }
    data = seal_archive(document, passphrase)
    try:
        _write_private(target, data)
    except OSError as exc:
        raise BackupRefused(f"The backup cannot be written to {target} ({exc.strerror}).") from None
    return {
        "tokens": len(rows["tokens"]),
        "profiles": sum(len(t["profiles"]) for t in rows["tokens"]),
        "users": len(rows["users"]),
        "api_keys": len(rows["api_keys"]),
    }


def _notify_clash(home: Path, text: str | None) -> bool:
    path = home / NOTIFY_FILE
    return text is not None and path.exists() and path.read_text("utf-8") != text


def _clash_error(clashes: dict[str, list[str]]) -> RestoreClash:
    parts = [
        f"{what} {', '.join(names)}"
        for what, names in (
            ("token(s)", clashes["tokens"]),
            ("user(s)", clashes["users"]),
            ("API key(s)", clashes["api_keys"]),
            ("notification settings", clashes.get("notify", [])),
        )
        if names
    ]
    return RestoreClash(
        f"This installation already has {'; '.join(parts)} that the backup holds too; "
        "nothing was restored.",
        data={"clashes": clashes},
    )


def read_archive(source: Path, passphrase: str) -> dict[str, Any]:
    """The document of the archive in ``source`` (see :func:`open_archive`)."""
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise BackupRefused(f"The backup {source} cannot be read ({exc.strerror}).") from None
    return open_archive(data, passphrase)


async def restore_backup(
    db: Database, box: SecretBox, home: Path, document: dict[str, Any], *, force: bool
) -> Restored:
    """Restore an opened archive (:func:`read_archive`) into this installation, sealing its
    secrets under ``box``, in one transaction. A token, user or API key of a name already here
    (or different notification settings) is a RestoreClash unless ``force``, which replaces
    it."""
    notify_text = document.get("notify_toml")
    try:
        async with db.write() as session:
            clashes = await find_clashes(session, document)
            if _notify_clash(home, notify_text):
                clashes["notify"] = [NOTIFY_FILE]
            if any(clashes.values()) and not force:
                raise _clash_error(clashes)
            counts = await write_backup_rows(
                session, document, box, now=datetime.now(UTC), replace=force
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise _unreadable(f"its contents are damaged ({type(exc).__name__})") from None
    # After the commit: a file cannot join the transaction, and the database is what matters.
    notify_path = home / NOTIFY_FILE
    wrote_notify = notify_text is not None and (
        not notify_path.exists() or bool(clashes.get("notify"))
    )
    if wrote_notify:
        _write_private(notify_path, str(notify_text).encode("utf-8"))
    replaced = {what: names for what, names in clashes.items() if names}
    return Restored(counts, wrote_notify, document.get("created_at"), replaced)
