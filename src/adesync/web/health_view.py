"""The health report for the web: the same document as ``adesync diagnose --json``.

It reads what health stored (token states, current findings); health's message catalogues word
them in the reader's language.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from adesync.store.tables import tokens
from adesync.web.state import WebState

__all__ = ["alert_tokens", "health_report"]


async def health_report(state: WebState, *, token: str | None, lang: str) -> dict[str, Any]:
    """Status, alert and findings (all tokens, or ``token`` only), as health stored them."""
    from adesync.health.report import stored_report

    return await stored_report(state.db, token=token, lang=lang, settings=state.settings)


async def alert_tokens(state: WebState, *, only: str | None = None) -> list[dict[str, Any]]:
    """Tokens whose stored state is ``error``: name, organisation and the reason code."""
    query = (
        select(tokens.c.name, tokens.c.org_name, tokens.c.state_reason)
        .where(tokens.c.state == "error")
        .order_by(tokens.c.name)
    )
    if only is not None:
        query = query.where(tokens.c.name == only)
    async with state.db.read() as session:
        rows = (await session.execute(query)).all()
    return [{"name": r.name, "org_name": r.org_name, "state_reason": r.state_reason} for r in rows]
