"""What every rule receives: the tokens in scope, a session to query, the time and the limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.health.catalogue import Severity
from adesync.health.model import Finding, Param, Rule
from adesync.health.settings import Limits
from adesync.store.tables import tokens

__all__ = ["RuleContext", "TokenFacts", "load_token_facts"]


@dataclass(frozen=True)
class TokenFacts:
    """The ``tokens`` columns the rules read, for one token that holds credentials."""

    id: int
    name: str
    token_type: str
    org_name: str | None
    server_name: str | None
    server_uuid: str | None
    admin_id: str | None
    access_token_expiry: datetime | None
    token_added_at: datetime | None
    created_at: datetime
    last_sync_at: datetime | None
    last_successful_sync_at: datetime | None
    default_profile_uuid: str | None
    last_error_code: str | None
    last_error_status: int | None
    last_error_body: str | None
    last_error_at: datetime | None
    last_error_detail: str | None
    last_error_reference: str | None
    profile_error_code: str | None
    profile_error_body: str | None
    profile_error_at: datetime | None
    profile_error_uuid: str | None
    consecutive_failures: int
    failing_since: datetime | None
    throttled_until: datetime | None
    clock_skew_seconds: float | None
    terms_not_accepted: bool
    token_rejected: bool
    access_denied: bool
    active_certificates: str | None
    state: str | None
    state_reason: str | None
    state_changed_at: datetime | None

    def failing_with(self, code: str) -> bool:
        """True while the current failure streak's latest error is ``code``."""
        return self.consecutive_failures > 0 and self.last_error_code == code

    @property
    def added_at(self) -> datetime:
        return self.token_added_at or self.created_at


_COLUMNS = [tokens.c[name] for name in TokenFacts.__dataclass_fields__]


async def load_token_facts(
    session: AsyncSession, token_ids: int | Sequence[int] | None
) -> list[TokenFacts]:
    """Every token holding credentials (or just those of ``token_ids``), ordered by name."""
    query = select(*_COLUMNS).where(tokens.c.oauth_credentials.is_not(None)).order_by(tokens.c.name)
    if isinstance(token_ids, int):
        query = query.where(tokens.c.id == token_ids)
    elif token_ids is not None:
        query = query.where(tokens.c.id.in_(sorted(set(token_ids))))
    rows = await session.execute(query)
    return [TokenFacts(**row._asdict()) for row in rows]


@dataclass(frozen=True)
class RuleContext:
    """A rule's view: ``tokens`` in scope; ``whole_installation`` when every token is
    evaluated; ``rule`` the rule being run (it sets the code and default severity of the
    findings made with :meth:`finding`)."""

    session: AsyncSession
    now: datetime
    tokens: Sequence[TokenFacts]
    whole_installation: bool
    limits: Limits
    rule: Rule | None = None

    def for_rule(self, rule: Rule) -> RuleContext:
        return replace(self, rule=rule)

    @property
    def token_ids(self) -> list[int]:
        return [token.id for token in self.tokens]

    def in_scope(self, column: Any) -> ColumnElement[bool]:
        """A WHERE clause keeping rows of the tokens in scope. For every token it is a
        sub-select of the tokens holding credentials, which also leads both databases'
        planners to the per-token indexes."""
        if self.whole_installation:
            held = select(tokens.c.id).where(tokens.c.oauth_credentials.is_not(None))
            return column.in_(held)  # type: ignore[no-any-return]
        return column.in_(self.token_ids)  # type: ignore[no-any-return]

    def by_id(self) -> dict[int, TokenFacts]:
        return {token.id: token for token in self.tokens}

    def finding(
        self,
        token: TokenFacts | None,
        *,
        severity: Severity | None = None,
        count: int = 1,
        samples: Sequence[str] = (),
        variant: str | None = None,
        extra: Mapping[str, Param] | None = None,
        **data: Param,
    ) -> Finding:
        """A finding of the running rule about ``token`` (``None``: the installation); its
        message parameters are ``data`` and ``extra``."""
        assert self.rule is not None, "finding() needs a context made by for_rule()"
        return Finding(
            code=self.rule.code,
            severity=severity or self.rule.severity,
            token_id=None if token is None else token.id,
            count=count,
            samples=tuple(samples[: self.limits.sample_size]),
            data={**data, **(extra or {})},
            variant=variant,
        )
