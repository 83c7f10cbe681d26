"""The entries of ``/help/findings``: every finding code with its severity, title, cause and
remediation steps, in the reader's language, from health's message catalogues."""

from __future__ import annotations

from typing import Any

__all__ = ["catalogue"]


def catalogue(lang: str) -> list[dict[str, Any]]:
    """One entry per code: ``code, severity, title, cause, remediation (list), who``."""
    from adesync.health.help import help_entries
    from adesync.health.messages import Door

    return help_entries(lang, door=Door.WEB)
