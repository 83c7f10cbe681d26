"""Display values of the token list, computed once in Python: a page of 100 tokens renders
without a macro or message lookup per cell (Jinja calls are the costly part of that page)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from adesync.web.i18n import Translator

__all__ = ["Alert", "AlertLine", "TokenRow", "alert_banner", "token_rows"]


class TokenRow(NamedTuple):
    """One row of the token list (attributes, so Jinja reads them without a lookup miss)."""

    name: str
    org: str
    type: str
    waiting: bool
    state: str
    state_label: str
    reason: str
    expiry_class: str
    expiry_text: str
    last_sync: str
    last_sync_iso: str
    devices: int
    default_profile: str


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def token_rows(
    items: list[dict[str, Any]], t: Translator, days_left: Callable[[datetime | None], int | None]
) -> list[TokenRow]:
    cache: dict[str, str] = {}

    def label(key: str, fallback: str) -> str:
        if key not in cache:
            cache[key] = t(key) if t.has(key) else fallback
        return cache[key]

    rows = []
    for item in items:
        waiting = item["status"] == "waiting_for_p7m"
        state = item["state"] or "unknown"
        reason = item["state_reason"]
        days = days_left(item["expires_at"]) if not waiting else None
        if days is None:
            expiry_class, expiry_text = "muted", "—"
        elif days < 0:
            expiry_class, expiry_text = "error", t("expiry.expired", days=-days)
        else:
            expiry_class = "warning" if days <= 30 else "ok"
            expiry_text = t("expiry.days_left", days=days)
        synced = item["last_successful_sync_at"]
        rows.append(
            TokenRow(
                name=item["name"],
                org=item["org_name"] or "—",
                type=label(f"type.{item['token_type']}", item["token_type"]),
                waiting=waiting,
                state=state,
                state_label=label(f"state.{state}", state),
                reason=label(f"reason.{reason}", reason) if reason else "",
                expiry_class=expiry_class,
                expiry_text=expiry_text,
                last_sync=_when(synced),
                last_sync_iso=synced.isoformat() if synced else "",
                devices=item["device_count"],
                default_profile=(item["default_profile_uuid"] or "")[:12],
            )
        )
    return rows


class AlertLine(NamedTuple):
    """One token of the alert banner every console page shows."""

    name: str
    label: str
    reason: str


class Alert(NamedTuple):
    """The alert banner: the first tokens in error, and how many there are in all (the banner
    names a few and links to the list of the others, instead of naming hundreds)."""

    lines: list[AlertLine]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.lines)


def alert_banner(tokens: list[dict[str, Any]], total: int, t: Translator) -> Alert | None:
    """The banner for the first ``tokens`` in error of ``total``; None when none is."""
    if total == 0:
        return None
    reasons: dict[str | None, str] = {}
    lines = []
    for token in tokens:
        code = token["state_reason"]
        if code not in reasons:
            key = f"reason.{code}"
            reasons[code] = t(key) if code and t.has(key) else (code or "")
        org = token["org_name"]
        label = f"{token['name']} · {org}" if org else token["name"]
        lines.append(AlertLine(token["name"], label, reasons[code]))
    return Alert(lines, total)
