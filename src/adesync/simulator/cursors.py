"""Opaque, tamper-evident device cursors.

A cursor is unpadded base64 (like Apple's) of ``kind:server:position:sequence:issued_ms:tag``
where ``tag`` is a truncated HMAC, so a cursor that was edited, belongs to another simulator
seed or is plain garbage is recognised and answered ``INVALID_CURSOR``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

__all__ = ["Cursor", "CursorCodec", "CursorKind"]

CursorKind = Literal["fetch", "sync"]
_KIND_CODES: dict[str, CursorKind] = {"f": "fetch", "s": "sync"}


@dataclass(frozen=True, slots=True)
class Cursor:
    """What a cursor encodes.

    ``position`` is the next roster position of a fetch; ``sequence`` is the event sequence
    number the page was taken at (fetch: the snapshot; sync: the last event returned).
    """

    kind: CursorKind
    server: int
    position: int
    sequence: int
    issued_ms: int


class CursorCodec:
    """Encodes and validates cursors with a key derived from the simulator's seed."""

    def __init__(self, seed: int) -> None:
        self._key = hashlib.sha256(f"adesync-simulator-cursor:{seed}".encode()).digest()

    def _tag(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()[:16]

    def encode(self, cursor: Cursor) -> str:
        payload = (
            f"{cursor.kind[0]}:{cursor.server}:{cursor.position}:{cursor.sequence}:"
            f"{cursor.issued_ms}"
        )
        raw = f"{payload}:{self._tag(payload)}".encode()
        return base64.b64encode(raw).decode().rstrip("=")

    def decode(self, text: str) -> Cursor | None:
        """The cursor ``text`` encodes, or ``None`` when it is not one this codec issued."""
        if not text or len(text) > 1000:
            return None
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True).decode("ascii")
        except (binascii.Error, ValueError):
            return None
        parts = raw.split(":")
        if len(parts) != 6:
            return None
        payload, tag = ":".join(parts[:5]), parts[5]
        if not hmac.compare_digest(tag, self._tag(payload)):
            return None
        kind = _KIND_CODES.get(parts[0])
        try:
            server, position, sequence, issued = (int(p) for p in parts[1:5])
        except ValueError:
            return None
        if kind is None or min(server, position, sequence, issued) < 0:
            return None
        return Cursor(kind, server, position, sequence, issued)
