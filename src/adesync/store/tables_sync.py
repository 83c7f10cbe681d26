"""Tables for devices, profiles, assignments, sync runs and worker heartbeats (sync issue)."""

from __future__ import annotations

from adesync.store.tables import metadata

__all__ = ["metadata"]
