"""The health report for the web: the same document as ``adesync diagnose --json``, its steps
worded for the web door (the console's buttons and forms, never a shell command).

It reads what health stored (token states, current findings); health's message catalogues word
them in the reader's language.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Select, func, select

from adesync.store.tables import tokens
from adesync.web.state import WebState

__all__ = ["ALERT_SHOWN", "alert_tokens", "health_report"]


async def health_report(state: WebState, *, token: str | None, lang: str) -> dict[str, Any]:
    """Status, alert and findings (all tokens, or ``token`` only), as health stored them,
    worded for the web (the console's buttons, never a shell command)."""
    from adesync.health.messages import Door
    from adesync.health.report import stored_report

    return await stored_report(
        state.db, token=token, lang=lang, settings=state.settings, door=Door.WEB
    )


ALERT_SHOWN = 5


@functools.cache
def _alert_query() -> Select[Any]:
    # One statement for the first few and the total. The total is a subquery, not a window
    # count: ix_tokens_state answers it from the index alone, and only the first few rows are
    # read from the table.
    in_error = tokens.c.state == "error"
    return (
        select(
            tokens.c.name,
            tokens.c.org_name,
            tokens.c.state_reason,
            select(func.count())
            .select_from(tokens)
            .where(in_error)
            .scalar_subquery()
            .label("total"),
        )
        .where(in_error)
        .order_by(tokens.c.name)
        .limit(ALERT_SHOWN)
    )


async def alert_tokens(state: WebState) -> tuple[list[dict[str, Any]], int]:
    """The first ``ALERT_SHOWN`` tokens (by name) whose stored state is ``error`` (name,
    organisation, reason code), and how many tokens are in error in all."""
    async with state.db.read() as session:
        rows = (await session.execute(_alert_query())).all()
    first = [{"name": r.name, "org_name": r.org_name, "state_reason": r.state_reason} for r in rows]
    return first, (int(rows[0].total) if rows else 0)
