"""Secrets at rest: AES-256-GCM sealing of secret columns, the key file and the key check.

The key is 32 random bytes, written URL-safe base64 in ``ADESYNC_SECRET_KEY`` or in
``ADESYNC_HOME/secret.key`` (mode 0600). The database keeps a key-check value (an HMAC of a
fixed label under the key), so a process holding another key stops with one clear error
instead of misreading secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets as pysecrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adesync.errors import AdesyncError

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = b"\x01"
KEY_CHECK_LABEL = b"adesync secret key check v1"


class SecretKeyError(AdesyncError):
    """The secret key is missing, malformed, or not the one this database was sealed with."""

    code = "secret_key_invalid"
    exit_code = 3


class SecretBox:
    """Seals and opens secret column values with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretKeyError(f"The secret key must be {KEY_BYTES} bytes long.")
        self._aead = AESGCM(key)
        self._key = key

    @classmethod
    def generate(cls) -> SecretBox:
        return cls(pysecrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_text(cls, text: str, *, source: str) -> SecretBox:
        try:
            key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise SecretKeyError(
                f"The secret key in {source} is not URL-safe base64 text."
            ) from None
        if len(key) != KEY_BYTES:
            raise SecretKeyError(
                f"The secret key in {source} decodes to {len(key)} bytes; it must be {KEY_BYTES}."
            )
        return cls(key)

    def to_text(self) -> str:
        return base64.urlsafe_b64encode(self._key).decode("ascii")

    @property
    def key_check(self) -> str:
        """A value that identifies the key without revealing it."""
        return hmac.new(self._key, KEY_CHECK_LABEL, hashlib.sha256).hexdigest()[:32]

    def seal(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return FORMAT_VERSION + nonce + self._aead.encrypt(nonce, plaintext, None)

    def open(self, sealed: bytes) -> bytes:
        if sealed[:1] != FORMAT_VERSION or len(sealed) < 1 + NONCE_BYTES + 16:
            raise SecretKeyError("A stored secret is damaged or was not sealed by adesync.")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, None)
        except InvalidTag:
            raise SecretKeyError(
                "A stored secret cannot be opened with this secret key; "
                "the database was sealed with another key."
            ) from None

    def seal_text(self, plaintext: str) -> bytes:
        return self.seal(plaintext.encode("utf-8"))

    def open_text(self, sealed: bytes) -> str:
        return self.open(sealed).decode("utf-8")


def read_key_file(path: Path) -> SecretBox:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise key_missing(path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretKeyError(f"The secret key file {path} cannot be read ({exc}).") from None
    return SecretBox.from_text(text, source=str(path))


def key_missing(path: Path) -> SecretKeyError:
    """The key of a database that holds sealed secrets is gone: only that key opens them."""
    return SecretKeyError(
        f"No secret key: {path} does not exist and ADESYNC_SECRET_KEY is not set, and only the "
        "key this database was sealed with opens its secrets; restore secret.key from your copy "
        "of it, or restore a backup (`adesync restore FILE`) into a new installation.",
        code="secret_key_missing",
    )


def fsync_directory(path: Path) -> None:
    """Make a rename or a new file in directory ``path`` survive a crash of the machine."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_fd(fd: int, box: SecretBox) -> None:
    try:
        os.write(fd, (box.to_text() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def write_key_file(path: Path, box: SecretBox) -> None:
    """Write the key with mode 0600, atomically and durably: a crash leaves the old file or the
    new one, and once this returns the new one is on disk (the file, then its directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    _write_fd(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), box)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    fsync_directory(path.parent)


def write_new_key_file(path: Path, box: SecretBox) -> None:
    """Create ``path`` (mode 0600) holding the key, durably; an existing file is never replaced
    (it may hold another key): AdesyncError instead."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AdesyncError(
            f"{path} already exists; name a new file for the new key (an existing file is "
            "never overwritten).",
            code="key_file_exists",
        ) from None
    except OSError as exc:
        raise AdesyncError(f"The key file {path} cannot be created ({exc.strerror}).") from None
    _write_fd(fd, box)
    os.chmod(path, 0o600)
    fsync_directory(path.parent)


def load_box(secret_key: str | None, key_file: Path) -> SecretBox:
    """The key from the environment if set, else from the key file."""
    if secret_key:
        return SecretBox.from_text(secret_key, source="ADESYNC_SECRET_KEY")
    return read_key_file(key_file)


def ensure_key_file(key_file: Path) -> tuple[SecretBox, bool]:
    """Load the key file, creating it (0600) if absent; returns the box and whether it was new."""
    if key_file.exists():
        return read_key_file(key_file), False
    box = SecretBox.generate()
    write_key_file(key_file, box)
    return box, True


__all__ = [
    "SecretBox",
    "SecretKeyError",
    "ensure_key_file",
    "fsync_directory",
    "key_missing",
    "load_box",
    "read_key_file",
    "write_key_file",
    "write_new_key_file",
]
