"""The composition root: connects health and notify to the sync engine's hooks.

The CLI and ``serve`` call :func:`install` once at start. Each feature adds its registration
here, in one place, so the wiring of the whole application can be read in one file.
"""

from __future__ import annotations

_installed = {"done": False}


def install() -> None:
    """Register every hook (idempotent)."""
    if _installed["done"]:
        return
    _installed["done"] = True
