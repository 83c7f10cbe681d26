"""The entries of ``/help/findings``: every finding code with its severity, title, cause and
remediation steps, in the reader's language, from health's message catalogues."""

from __future__ import annotations

from typing import Any

from adesync.web.problems import FINDING_CODES

__all__ = ["catalogue"]

SEVERITY = {
    "token_expired": "error",
    "token_expiring": "warning",
    "terms_not_accepted": "error",
    "token_rejected": "error",
    "access_denied": "error",
    "duplicate_server": "error",
    "user_agent_rejected": "error",
    "sync_stale": "warning",
    "never_synced": "warning",
    "apple_unavailable": "warning",
    "apple_throttled": "info",
    "clock_skew": "warning",
    "cursor_recovered": "info",
    "no_default_profile": "warning",
    "profile_invalid": "error",
    "profile_not_found": "error",
    "assignment_failed": "warning",
    "devices_without_profile": "warning",
    "pushed_not_enrolled": "warning",
    "enrollment_url_unreachable": "warning",
    "certificate_expiring": "warning",
    "scheduler_down": "warning",
    "token_over_capacity": "warning",
    "personal_apple_id": "info",
}


def catalogue(lang: str) -> list[dict[str, Any]]:
    """One entry per code: ``code, severity, title, cause, remediation (list), who``."""
    try:
        from adesync.health import help as health_help  # type: ignore[attr-defined]
    except ImportError:
        health_help = None
    if health_help is not None and hasattr(health_help, "help_entries"):
        entries: list[dict[str, Any]] = health_help.help_entries(lang)
        return entries
    return [
        {
            "code": code,
            "severity": SEVERITY.get(code, "warning"),
            "title": code.replace("_", " "),
            "cause": "",
            "remediation": [],
            "who": "",
        }
        for code in sorted(FINDING_CODES)
    ]
