"""Display values of the token list, computed once in Python: a page of 100 tokens renders
without a macro or message lookup per cell (Jinja calls are the costly part of that page), and
a row whose display values were rendered before is not rendered again."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, NamedTuple

from jinja2 import Template
from markupsafe import Markup

from adesync.web.charts import ExpiryBar
from adesync.web.i18n import Translator

__all__ = [
    "Alert",
    "AlertLine",
    "TokenRow",
    "alert_banner",
    "days_left",
    "expiry_cell",
    "token_list",
]


def days_left(value: datetime | None, now: datetime | None = None) -> int | None:
    """Whole days the admin has left (4.2 days left is "5 days left"); an expired token shows
    how many whole days ago, at least one."""
    if value is None:
        return None
    seconds = (value - (now or datetime.now(UTC))).total_seconds()
    if seconds > 0:
        return math.ceil(seconds / 86400)
    return -max(1, int(-seconds // 86400))


class TokenRow(NamedTuple):
    """One row of the token list, as displayed: what its HTML depends on, all of it (rows
    with the same values render the same, so a rendered row is kept by these values)."""

    name: str
    org: str
    type: str
    waiting: bool
    waiting_label: str
    state: str
    state_label: str
    reason: str
    expiry_class: str
    expiry_text: str
    last_sync: str
    last_sync_iso: str
    devices: int
    default_profile: str
    no_default_label: str


def _when(value: datetime) -> str:
    # "2026-12-01 10:11 UTC", from isoformat (twice as fast as strftime, 100 times a page).
    return value.isoformat(" ")[:16] + " UTC"


class _Labels:
    """The token list's words in one language, each looked up once per page (rows not
    rendered before need them)."""

    def __init__(self, t: Translator) -> None:
        self.t = t
        self._cache: dict[str, str] = {}
        self.waiting = t("tokens.waiting")
        self.no_default = t("tokens.no_default")

    def label(self, key: str, fallback: str) -> str:
        if key not in self._cache:
            self._cache[key] = self.t(key) if self.t.has(key) else fallback
        return self._cache[key]

    def expiry(self, days: int | None) -> tuple[str, str]:
        return expiry_cell(self.t, days)


def expiry_cell(t: Translator, days: int | None) -> tuple[str, str]:
    """CSS class and text of a token's expiry, ``days`` from ``days_left``: ``muted`` (none),
    ``error`` (expired), ``warning`` (30 days or fewer) or ``ok``. The token list and the token
    page (``macros.html``) both show it."""
    if days is None:
        return "muted", "—"
    if days < 0:
        return "error", t("expiry.expired", days=-days)
    return "warning" if days <= 30 else "ok", t("expiry.days_left", days=days)


def _token_row(item: dict[str, Any], waiting: bool, days: int | None, words: _Labels) -> TokenRow:
    state = item["state"] or "unknown"
    reason = item["state_reason"]
    expiry_class, expiry_text = words.expiry(days)
    synced = item["last_successful_sync_at"]
    return TokenRow(
        name=item["name"],
        org=item["org_name"] or "—",
        type=words.label(f"type.{item['token_type']}", item["token_type"]),
        waiting=waiting,
        waiting_label=words.waiting,
        state=state,
        state_label=words.label(f"state.{state}", state),
        reason=words.label(f"reason.{reason}", reason) if reason else "",
        expiry_class=expiry_class,
        expiry_text=expiry_text,
        last_sync=_when(synced) if synced else "—",
        last_sync_iso=synced.isoformat() if synced else "",
        devices=item["device_count"],
        default_profile=(item["default_profile_uuid"] or "")[:12],
        no_default_label=words.no_default,
    )


# Rendered rows by everything a row shows (its language and stored values, its days left):
# a list page shows the same rows again until a token changes, so a row is rendered once per
# process, not once per request. Emptied when full (a few MB at most).
_ROWS: dict[tuple[Any, ...], Markup] = {}
_ROWS_KEPT = 8192


def token_list(
    items: list[dict[str, Any]], t: Translator, template: Template
) -> tuple[list[Markup], list[ExpiryBar]]:
    """The rows of a token-list page rendered with ``template`` (``token_row.html``), and the
    expiry chart's bars (tokens with a token installed)."""
    now = datetime.now(UTC)
    words: _Labels | None = None
    rows: list[Markup] = []
    bars: list[ExpiryBar] = []
    for item in items:
        waiting = item["status"] == "waiting_for_p7m"
        days = None if waiting else days_left(item["expires_at"], now)
        if not waiting:
            bars.append(ExpiryBar(item["name"], days))
        key = (
            template,
            t.lang,
            item["name"],
            item["org_name"],
            item["token_type"],
            waiting,
            item["state"],
            item["state_reason"],
            days,
            item["last_successful_sync_at"],
            item["device_count"],
            item["default_profile_uuid"],
        )
        html = _ROWS.get(key)
        if html is None:
            words = words or _Labels(t)
            row = _token_row(item, waiting, days, words)
            html = Markup(template.render(r=row))  # noqa: S704 (autoescaped by the template)
            if len(_ROWS) >= _ROWS_KEPT:
                _ROWS.clear()
            _ROWS[key] = html
        rows.append(html)
    return rows, bars


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
