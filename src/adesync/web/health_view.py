"""The health report for the web: the same document as ``adesync diagnose --json``.

It reads what health stored (token states, current findings); rendering findings in a language
uses health's message catalogues. Until the health package offers its report function, a
minimal report is built here from the stored rows.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from adesync.store.tables import tokens
from adesync.web.state import WebState

__all__ = ["alert_tokens", "health_report"]


async def health_report(state: WebState, *, token: str | None, lang: str) -> dict[str, Any]:
    """Status, alert and findings (all tokens, or ``token`` only)."""
    try:
        from adesync.health import report as health_module  # type: ignore[attr-defined]
    except ImportError:
        health_module = None
    if health_module is not None and hasattr(health_module, "stored_report"):
        document: dict[str, Any] = await health_module.stored_report(
            state.db, token=token, lang=lang, settings=state.settings
        )
        return document
    return await _stored_report(state, token=token)


async def _stored_report(state: WebState, *, token: str | None) -> dict[str, Any]:
    from adesync.store.tables_health import findings

    query = select(
        findings.c.code,
        findings.c.severity,
        findings.c.count,
        findings.c.samples,
        tokens.c.name,
    ).outerjoin(tokens, tokens.c.id == findings.c.token_id)
    if token is not None:
        query = query.where(tokens.c.name == token)
    async with state.db.read() as session:
        rows = (await session.execute(query)).all()
    order = {"error": 0, "warning": 1, "info": 2}
    found = sorted(
        (
            {
                "code": row.code,
                "severity": row.severity,
                "token": row.name,
                "title": row.code,
                "detail": "",
                "remediation": [],
                "doc_url": f"/help/findings#{row.code}",
                "count": row.count,
                "samples": json.loads(row.samples or "[]"),
            }
            for row in rows
        ),
        key=lambda f: (order.get(f["severity"], 3), f["token"] or "", f["code"]),
    )
    severities = {f["severity"] for f in found}
    status = (
        "error" if "error" in severities else "warning" if "warning" in severities else "healthy"
    )
    affected = await alert_tokens(state, only=token)
    alert = None
    if affected:
        alert = {
            "title": "One or more ADE tokens are in an error state",
            "text": "Until each is resolved, ADE will not work as expected.",
            "symptoms": [],
            "affected_tokens": [{"name": t["name"], "org_name": t["org_name"]} for t in affected],
        }
    return {"status": status, "alert": alert, "findings": found}


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
