"""The composition root: connects health and notify to the sync engine's hooks.

The CLI and ``serve`` call :func:`install` once at start. Each feature adds its registration
here, in one place, so the wiring of the whole application can be read in one file.
"""

from __future__ import annotations

from adesync.store.database import Database

_installed = {"done": False}


def start_metrics_server(db: Database, port: int) -> None:
    """Serve Prometheus metrics on ``port`` (the health feature provides the collector)."""
    from adesync.errors import AdesyncError

    raise AdesyncError("Metrics are not available in this build yet.")


def install() -> None:
    """Register every hook (idempotent)."""
    if _installed["done"]:
        return
    _installed["done"] = True
