"""The health report: findings for all tokens (or one), each token's state, an overall status
and the alert when any token is in ``error`` — the document ``adesync diagnose --json``
prints and the API serves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adesync.config import Settings
from adesync.health.catalogue import State, state_for
from adesync.health.evaluate import Health, Seen, TokenHealth
from adesync.health.messages import Door, TokenLabel, message, message_list, render_finding
from adesync.health.model import stamp
from adesync.health.stored import find_token_id, read_health
from adesync.store.database import Database

__all__ = [
    "build_alert",
    "build_report",
    "ordered_tokens",
    "overall_state",
    "stored_report",
    "suppressed_findings",
]


def ordered_tokens(health: Health) -> list[TokenHealth]:
    """Tokens worst first, then by name."""
    return sorted(health.tokens, key=lambda t: (-t.state.rank, t.label.name))


def overall_state(health: Health) -> State:
    """The worst state of any token and of the installation's own findings."""
    installation = state_for(seen.finding.severity for seen in health.installation)
    worst = max((t.state for t in health.tokens), key=lambda s: s.rank, default=State.HEALTHY)
    return worst if worst.rank >= installation.rank else installation


def build_alert(
    tokens: Sequence[TokenHealth], lang: str, door: Door = Door.CLI
) -> dict[str, Any] | None:
    """The alert for the tokens in ``error`` (``None`` when there is none), in ``lang``,
    worded for ``door``."""
    failing = [t for t in tokens if t.state is State.ERROR]
    if not failing:
        return None
    return {
        "title": message(lang, "alert", "title", door=door),
        "text": message(lang, "alert", "text", door=door),
        "symptoms": message_list(lang, "alert", "symptoms"),
        "affected_tokens": [
            {"name": t.label.name, "org_name": t.label.org_name, "state_reason": t.state_reason}
            for t in sorted(failing, key=lambda t: t.label.name)
        ],
    }


def _rendered(
    seen: Seen, token: TokenLabel | None, lang: str, docs_url: str | None, door: Door
) -> Any:
    document = render_finding(seen.finding, token, lang, docs_url=docs_url, door=door)
    document["first_seen_at"] = stamp(seen.first_seen_at)
    return document


def suppressed_findings(health: Health) -> list[dict[str, Any]]:
    """``[{"code", "token", "hidden_by"}]``: the findings another finding of the same token
    explains (one cause per fault), by token name then code; they count toward nothing."""
    return [
        {"code": s.finding.code, "token": t.label.name, "hidden_by": s.hidden_by}
        for t in sorted(health.tokens, key=lambda t: t.label.name)
        for s in sorted(t.suppressed, key=lambda s: s.finding.code)
    ]


def build_report(
    health: Health, lang: str, *, docs_url: str | None = None, door: Door = Door.CLI
) -> dict[str, Any]:
    """``{"status", "alert", "findings", "suppressed", "tokens", "evaluated_at"}``: findings
    grouped by token, worst token first (the installation's own findings where their severity
    puts them), each group worst finding first, worded for ``door``; ``suppressed`` the
    findings hidden by the one cause of their fault (:func:`suppressed_findings`); ``tokens``
    every token's state. Status and alert come from the tokens' states, which hidden findings
    never reach."""
    groups: list[tuple[int, list[Any]]] = []
    for token in ordered_tokens(health):
        groups.append(
            (
                token.state.rank,
                [_rendered(s, token.label, lang, docs_url, door) for s in token.findings],
            )
        )
    if health.installation:
        rank = state_for(s.finding.severity for s in health.installation).rank
        installation = [_rendered(s, None, lang, docs_url, door) for s in health.installation]
        position = next((i for i, (r, _) in enumerate(groups) if r < rank), len(groups))
        groups.insert(position, (rank, installation))
    return {
        "status": overall_state(health).value,
        "alert": build_alert(health.tokens, lang, door),
        "findings": [finding for _, group in groups for finding in group],
        "suppressed": suppressed_findings(health),
        "tokens": [
            {
                "name": t.label.name,
                "org_name": t.label.org_name,
                "state": t.state.value,
                "state_reason": t.state_reason,
                "state_changed_at": stamp(t.state_changed_at),
                "expires_at": stamp(t.expires_at),
            }
            for t in ordered_tokens(health)
        ],
        "evaluated_at": stamp(health.at),
    }


async def stored_report(
    db: Database,
    *,
    token: str | None,
    lang: str,
    settings: Settings | None = None,
    door: Door = Door.CLI,
) -> dict[str, Any]:
    """The report from the stored health (no rules run), worded for ``door``: what the console
    and API show (``Door.WEB``). ``token`` is a token name (NotFoundError if unknown). Hidden
    findings are never stored, so this report has no ``suppressed`` list (what it shows already
    obeys the precedence)."""
    token_id = None if token is None else await find_token_id(db, token)
    health = await read_health(db, token_id=token_id)
    docs_url = settings.docs_url if settings else None
    report = build_report(health, lang, docs_url=docs_url, door=door)
    del report["suppressed"]
    return report
