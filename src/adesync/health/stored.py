"""Read the stored health (states and current findings) without running the rules: what the
token list, the console and the API show between evaluations."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select

from adesync.errors import AdesyncError, NotFoundError
from adesync.health.catalogue import State
from adesync.health.evaluate import Health, Seen, TokenHealth, finding_from_row, sort_seen
from adesync.health.messages import TokenLabel
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_health import findings
from adesync.store.types import utcnow

__all__ = ["TokenNotReady", "find_token_id", "read_health"]


class TokenNotReady(AdesyncError):
    """The token exists but holds no credentials yet (a key pair waiting for its .p7m)."""

    code = "token_not_ready"
    http_status = 409


async def find_token_id(db: Database, name: str) -> int:
    """The id of the token named ``name``; NotFoundError if there is none, TokenNotReady if it
    waits for its first server token."""
    async with db.read() as session:
        row = (
            await session.execute(
                select(tokens.c.id, tokens.c.oauth_credentials.is_not(None)).where(
                    tokens.c.name == name
                )
            )
        ).first()
    if row is None:
        raise NotFoundError(f"There is no token named {name!r}; `adesync tokens list` shows them.")
    if not row[1]:
        raise TokenNotReady(
            f"Token {name!r} is still waiting for its first server token (.p7m), so there is "
            "nothing to diagnose yet."
        )
    return int(row[0])


async def read_health(db: Database, *, token_id: int | None = None) -> Health:
    """The stored health of every token holding credentials (or of ``token_id``); a token
    never evaluated reads as ``healthy`` with no findings."""
    async with db.read() as session:
        query = (
            select(
                tokens.c.id,
                tokens.c.name,
                tokens.c.org_name,
                tokens.c.server_name,
                tokens.c.token_type,
                tokens.c.access_token_expiry,
                tokens.c.state,
                tokens.c.state_reason,
                tokens.c.state_changed_at,
            )
            .where(tokens.c.oauth_credentials.is_not(None))
            .order_by(tokens.c.name)
        )
        rows_query = select(findings)
        if token_id is not None:
            query = query.where(tokens.c.id == token_id)
            rows_query = rows_query.where(findings.c.token_id == token_id)
        token_rows = (await session.execute(query)).all()
        by_token: dict[int | None, list[Seen]] = defaultdict(list)
        for row in await session.execute(rows_query):
            by_token[row.token_id].append(
                Seen(finding_from_row(row), row.first_seen_at, row.last_seen_at)
            )
    result = [
        TokenHealth(
            label=TokenLabel(row.id, row.name, row.org_name, row.server_name, row.token_type),
            expires_at=row.access_token_expiry,
            state=State(row.state) if row.state else State.HEALTHY,
            state_reason=row.state_reason,
            state_changed_at=row.state_changed_at,
            findings=sort_seen(by_token.get(row.id, [])),
        )
        for row in token_rows
    ]
    return Health(
        at=utcnow(),
        tokens=tuple(result),
        installation=sort_seen(by_token.get(None, [])) if token_id is None else (),
        whole_installation=token_id is None,
    )
