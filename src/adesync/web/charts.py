"""Two small SVG charts drawn on the server (no script): days to expiry across tokens and the
sync history of one token. Each has a title and description for screen readers; the same
numbers are in a table beside it."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

__all__ = ["ExpiryBar", "RunBar", "expiry_chart", "runs_chart"]

BAR_HEIGHT = 18
GAP = 6
LABEL_WIDTH = 150
MAX_DAYS = 365


@dataclass(frozen=True)
class ExpiryBar:
    label: str
    days_left: int | None  # negative when expired, None when unknown


@dataclass(frozen=True)
class RunBar:
    label: str  # when it started
    devices: int  # added + modified + deleted
    outcome: str  # ok | error | throttled | running


def expiry_colour(days: int | None) -> str:
    if days is None:
        return "muted"
    if days < 0:
        return "error"
    if days <= 30:
        return "warning"
    return "ok"


def expiry_chart(bars: Sequence[ExpiryBar], *, title: str, description: str) -> Markup:
    """Days to expiry of each token, a bar each (kept by value: the token list draws the same
    chart for every view of a page until a token's days change)."""
    return _expiry_chart(tuple(bars), title, description)


@functools.lru_cache(maxsize=256)
def _expiry_chart(bars: tuple[ExpiryBar, ...], title: str, description: str) -> Markup:
    width = 520
    height = max(1, len(bars)) * (BAR_HEIGHT + GAP) + GAP
    scale = (width - LABEL_WIDTH - 60) / MAX_DAYS
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="expiry-title expiry-desc" preserveAspectRatio="xMinYMin meet">',
        f'<title id="expiry-title">{escape(title)}</title>',
        f'<desc id="expiry-desc">{escape(description)}</desc>',
    ]
    for i, bar in enumerate(bars):
        y = GAP + i * (BAR_HEIGHT + GAP)
        days = bar.days_left
        length = 0 if days is None or days <= 0 else min(days, MAX_DAYS) * scale
        text = "?" if days is None else str(days)
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 13}" text-anchor="end" class="label">'
            f"{escape(bar.label[:22])}</text>"
        )
        parts.append(
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{max(length, 2):.1f}" '
            f'height="{BAR_HEIGHT}" class="bar {expiry_colour(days)}"/>'
        )
        parts.append(
            f'<text x="{LABEL_WIDTH + max(length, 2) + 4:.1f}" y="{y + 13}" class="value">'
            f"{escape(text)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text piece above is escaped)


def runs_chart(bars: Sequence[RunBar], *, title: str, description: str) -> Markup:
    width, height, bottom = 520, 140, 20
    count = max(1, len(bars))
    step = (width - 20) / count
    top = max([b.devices for b in bars] + [1])
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="runs-title runs-desc" preserveAspectRatio="xMinYMin meet">',
        f'<title id="runs-title">{escape(title)}</title>',
        f'<desc id="runs-desc">{escape(description)}</desc>',
        f'<line x1="10" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'class="axis"/>',
    ]
    for i, bar in enumerate(bars):
        bar_height = max(3.0, (height - bottom - 10) * bar.devices / top)
        x = 10 + i * step + step * 0.15
        kind = {"ok": "ok", "error": "error", "throttled": "warning"}.get(bar.outcome, "muted")
        parts.append(
            f'<rect x="{x:.1f}" y="{height - bottom - bar_height:.1f}" '
            f'width="{step * 0.7:.1f}" height="{bar_height:.1f}" class="bar {kind}">'
            f"<title>{escape(bar.label)}: {bar.devices} ({escape(bar.outcome)})</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text piece above is escaped)
