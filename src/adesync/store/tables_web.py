"""Tables for users, API keys, audit log (web issue), on the shared metadata."""

from __future__ import annotations

from adesync.store.tables import metadata

__all__ = ["metadata"]
