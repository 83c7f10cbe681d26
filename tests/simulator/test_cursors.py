"""Cursors are opaque base64, carry what they need, and cannot be forged."""

from __future__ import annotations

import base64

from adesync.simulator.cursors import Cursor, CursorCodec


def test_round_trip_and_unpadded_base64() -> None:
    codec = CursorCodec(seed=9)
    cursor = Cursor("sync", server=3, position=0, sequence=42, issued_ms=1_700_000_000_123)
    text = codec.encode(cursor)
    assert "=" not in text and len(text) <= 1000
    base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    assert codec.decode(text) == cursor


def test_tampered_foreign_and_garbage_cursors_are_refused() -> None:
    codec = CursorCodec(seed=9)
    text = codec.encode(Cursor("fetch", 0, 100, 5, 1_700_000_000_000))
    raw = base64.b64decode(text + "=" * (-len(text) % 4)).decode()
    tampered = base64.b64encode(raw.replace(":100:", ":900:").encode()).decode()
    assert codec.decode(tampered) is None
    assert CursorCodec(seed=10).decode(text) is None
    for garbage in ("", "!!!", "MTY1NzI2ODE5Ny0x", "x" * 1001, base64.b64encode(b"a:b:c").decode()):
        assert codec.decode(garbage) is None
