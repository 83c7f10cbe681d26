"""Tables for findings, notification outbox (health issue), on the shared metadata."""

from __future__ import annotations

from adesync.store.tables import metadata

__all__ = ["metadata"]
