"""Run the rules and store what they found: each token's ``state``, ``state_reason`` and
``state_changed_at`` on ``tokens``, and the current findings (first and last seen) in
``findings``. A change of state or of the set of error/warning codes is a transition; the
listeners in :data:`adesync.health.transitions.ON_TRANSITION` see it in the same transaction.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.health.catalogue import Severity, State, state_for
from adesync.health.messages import TokenLabel
from adesync.health.model import Finding
from adesync.health.precedence import Suppressed, one_cause_per_fault
from adesync.health.rules import RULES, RuleContext, TokenFacts, load_token_facts
from adesync.health.settings import Limits, load_limits
from adesync.health.transitions import (
    ON_TRANSITION,
    Transition,
    announced_codes,
    log_transitions,
)
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_health import findings
from adesync.store.types import utcnow

__all__ = [
    "Health",
    "Seen",
    "TokenHealth",
    "evaluate",
    "finding_from_row",
    "sort_findings",
    "sort_seen",
    "worst_reason",
]

# Serialises evaluations of the whole installation on PostgreSQL (its findings have no token
# row to lock); SQLite serialises every write transaction anyway.
_INSTALLATION_LOCK = 0x61646573
_CHUNK = 1000


@dataclass(frozen=True)
class Seen:
    """A current finding and when it was first and last detected."""

    finding: Finding
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class TokenHealth:
    """One token's state and its current findings, worst first; ``suppressed`` the findings
    another of its findings explains (see :mod:`adesync.health.precedence`): known right after
    an evaluation, never stored, so empty when read back."""

    label: TokenLabel
    expires_at: datetime | None
    state: State
    state_reason: str | None
    state_changed_at: datetime | None
    findings: tuple[Seen, ...]
    suppressed: tuple[Suppressed, ...] = ()


@dataclass(frozen=True)
class Health:
    """The outcome of an evaluation (or what is stored): ``tokens`` by name, ``installation``
    the findings about no token, ``transitions`` what changed (empty when read back)."""

    at: datetime
    tokens: tuple[TokenHealth, ...]
    installation: tuple[Seen, ...]
    whole_installation: bool
    transitions: tuple[Transition, ...] = ()


_ORDER = {rule.code: position for position, rule in enumerate(RULES)}


def _order(code: str) -> int:
    return _ORDER.get(code, len(RULES))


def sort_findings(found: Iterable[Finding]) -> list[Finding]:
    """Worst severity first, then in the registry's order."""
    return sorted(found, key=lambda f: (-f.severity.rank, _order(f.code)))


def sort_seen(items: Iterable[Seen]) -> tuple[Seen, ...]:
    """Stored findings, worst severity first, then in the registry's order."""
    return tuple(sorted(items, key=lambda s: (-s.finding.severity.rank, _order(s.finding.code))))


def worst_reason(found: Sequence[Finding]) -> str | None:
    """The code of the worst error or warning finding (``None`` if there is none)."""
    for finding in sort_findings(found):
        if finding.severity is not Severity.INFO:
            return finding.code
    return None


def _label(token: TokenFacts) -> TokenLabel:
    return TokenLabel(token.id, token.name, token.org_name, token.server_name, token.token_type)


def _data_json(finding: Finding) -> str:
    data: dict[str, Any] = dict(finding.data)
    if finding.variant is not None:
        data["_variant"] = finding.variant
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def finding_from_row(row: Any) -> Finding:
    """A stored ``findings`` row back as a :class:`Finding`."""
    data = json.loads(row.data)
    variant = data.pop("_variant", None)
    return Finding(
        code=row.code,
        severity=Severity(row.severity),
        token_id=row.token_id,
        count=row.count,
        samples=tuple(json.loads(row.samples)),
        data=data,
        variant=variant,
    )


async def evaluate(
    db: Database,
    *,
    token_id: int | Sequence[int] | None = None,
    now: datetime | None = None,
    limits: Limits | None = None,
) -> Health:
    """Evaluate every token holding credentials (and the installation), or only ``token_id``
    (one id, or several evaluated together); store the result and return it. ``now`` is
    injectable for tests (default: the clock). A finding that another finding of its token
    explains (:data:`adesync.health.precedence.HIDES`) is neither stored nor counted: it is
    returned in its token's ``suppressed``."""
    now = now or utcnow()
    limits = limits or load_limits()
    whole = token_id is None
    async with db.read() as session:
        facts = await load_token_facts(session, token_id)
        context = RuleContext(session, now, facts, whole, limits)
        found: list[Finding] = []
        if facts or whole:
            for rule in RULES:
                if rule.installation and not whole:
                    continue
                found.extend(await rule.check(context.for_rule(rule)))
    shown, suppressed = one_cause_per_fault(found)
    health = await _store(db, facts, shown, suppressed, now, whole)
    log_transitions(health.transitions)
    return health


def _among(db: Database, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """``column IN ids``; on PostgreSQL one array parameter (``= ANY``): the placeholders of
    thousands of ids cost SQLAlchemy and psycopg more than the statement itself."""
    if db.is_postgresql:
        return column == any_(literal(list(ids), ARRAY(Integer)))  # type: ignore[no-any-return]
    return column.in_(ids)  # type: ignore[no-any-return]


async def _lock(session: AsyncSession, db: Database, ids: list[int], whole: bool) -> set[int]:
    """Lock the tokens in scope (PostgreSQL); return the ids that still exist."""
    query = select(tokens.c.id).order_by(tokens.c.id)
    if db.is_postgresql:
        if whole:
            await session.execute(select(func.pg_advisory_xact_lock(_INSTALLATION_LOCK)))
        query = query.with_for_update()
    existing: set[int] = set()
    for start in range(0, len(ids), _CHUNK * 10):
        chunk = ids[start : start + _CHUNK * 10]
        existing.update(
            (await session.execute(query.where(_among(db, tokens.c.id, chunk)))).scalars()
        )
    return existing


async def _store(
    db: Database,
    facts: list[TokenFacts],
    found: list[Finding],
    suppressed: list[Suppressed],
    now: datetime,
    whole: bool,
) -> Health:
    grouped: dict[int | None, list[Finding]] = defaultdict(list)
    for finding in found:
        grouped[finding.token_id].append(finding)
    hidden: dict[int | None, list[Suppressed]] = defaultdict(list)
    for item in suppressed:
        hidden[item.finding.token_id].append(item)
    async with db.write() as session:
        existing = await _lock(session, db, [t.id for t in facts], whole)
        live = [t for t in facts if t.id in existing]
        live_ids = [t.id for t in live]
        scope = (
            findings.c.token_id.is_(None) | _among(db, findings.c.token_id, live_ids)
            if whole
            else _among(db, findings.c.token_id, live_ids)
        )
        stored: dict[int | None, dict[str, Any]] = defaultdict(dict)
        for row in await session.execute(select(findings).where(scope)):
            stored[row.token_id][row.code] = row
        states = {
            row.id: row
            for row in await session.execute(
                select(
                    tokens.c.id, tokens.c.state, tokens.c.state_reason, tokens.c.state_changed_at
                ).where(_among(db, tokens.c.id, live_ids))
            )
        }
        plan = _Plan(db, now)
        results: list[TokenHealth] = []
        for token in live:
            row = states[token.id]
            old_state = State(row.state) if row.state else None
            outcome = plan.subject(
                token, old_state, row.state_changed_at, stored[token.id], grouped[token.id]
            )
            results.append(
                TokenHealth(
                    label=_label(token),
                    expires_at=token.access_token_expiry,
                    state=outcome.state,
                    state_reason=outcome.reason,
                    state_changed_at=now
                    if old_state is not outcome.state
                    else row.state_changed_at,
                    findings=outcome.seen,
                    suppressed=tuple(hidden[token.id]),
                )
            )
        installation: tuple[Seen, ...] = ()
        if whole:
            old_rows = stored[None]
            old = state_for(Severity(r.severity) for r in old_rows.values()) if old_rows else None
            installation = plan.subject(None, old, None, old_rows, grouped[None]).seen
        await plan.apply(session)
        for listener in ON_TRANSITION:
            await listener(session, plan.transitions)
    return Health(
        at=now,
        tokens=tuple(results),
        installation=installation,
        whole_installation=whole,
        transitions=tuple(plan.transitions),
    )


@dataclass(frozen=True)
class _Outcome:
    state: State
    reason: str | None
    seen: tuple[Seen, ...]


class _Plan:
    """The writes one evaluation makes, collected per subject and applied in bulk."""

    def __init__(self, db: Database, now: datetime) -> None:
        self.db = db
        self.now = now
        self.inserts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.deletes: list[int] = []
        self.token_states: list[dict[str, Any]] = []
        self.transitions: list[Transition] = []
        self.touched: list[int | None] = []

    def subject(
        self,
        token: TokenFacts | None,
        old_state: State | None,
        changed_at: datetime | None,
        old_rows: dict[str, Any],
        new: list[Finding],
    ) -> _Outcome:
        token_id = None if token is None else token.id
        new = sort_findings(new)
        seen: list[Seen] = []
        for finding in new:
            row = old_rows.get(finding.code)
            values = {
                "severity": finding.severity.value,
                "count": finding.count,
                "samples": json.dumps(list(finding.samples), ensure_ascii=False),
                "data": _data_json(finding),
            }
            if row is None:
                self.inserts.append(
                    {
                        "token_id": token_id,
                        "code": finding.code,
                        "first_seen_at": self.now,
                        "last_seen_at": self.now,
                        **values,
                    }
                )
                seen.append(Seen(finding, self.now, self.now))
                continue
            if any(getattr(row, key) != value for key, value in values.items()):
                self.updates.append(
                    {"row_id": row.id, **{f"new_{k}": v for k, v in values.items()}}
                )
            seen.append(Seen(finding, row.first_seen_at, self.now))
        self.deletes.extend(
            row.id for code, row in old_rows.items() if code not in {f.code for f in new}
        )
        self.touched.append(token_id)
        new_state = state_for(f.severity for f in new)
        reason = worst_reason(new)
        old_codes = frozenset(
            code for code, row in old_rows.items() if row.severity != Severity.INFO.value
        )
        new_codes = announced_codes(new)
        if token is not None:
            state_changed = old_state is not new_state
            if state_changed or token.state_reason != reason:
                changed_at = self.now if state_changed else changed_at
                self.token_states.append(
                    {
                        "token_pk": token.id,
                        "new_state": new_state.value,
                        "new_reason": reason,
                        "new_changed_at": changed_at,
                    }
                )
        announce = old_codes != new_codes or (
            old_state is not new_state and not (old_state is None and new_state is State.HEALTHY)
        )
        if announce:
            self.transitions.append(
                Transition(
                    token=None if token is None else _label(token),
                    expires_at=None if token is None else token.access_token_expiry,
                    old_state=old_state,
                    new_state=new_state,
                    old_codes=old_codes,
                    new_codes=new_codes,
                    state_reason=reason,
                    findings=tuple(new),
                    at=self.now,
                )
            )
        return _Outcome(new_state, reason, tuple(seen))

    async def apply(self, session: AsyncSession) -> None:
        for start in range(0, len(self.deletes), _CHUNK):
            chunk = self.deletes[start : start + _CHUNK]
            await session.execute(delete(findings).where(_among(self.db, findings.c.id, chunk)))
        if self.updates:
            await session.execute(
                update(findings)
                .where(findings.c.id == bindparam("row_id"))
                .values(
                    severity=bindparam("new_severity"),
                    count=bindparam("new_count"),
                    samples=bindparam("new_samples"),
                    data=bindparam("new_data"),
                ),
                self.updates,
            )
        token_ids = [t for t in self.touched if t is not None]
        for start in range(0, len(token_ids), _CHUNK * 10):
            chunk = token_ids[start : start + _CHUNK * 10]
            await session.execute(
                update(findings)
                .where(_among(self.db, findings.c.token_id, chunk))
                .values(last_seen_at=self.now)
            )
        if None in self.touched:
            await session.execute(
                update(findings).where(findings.c.token_id.is_(None)).values(last_seen_at=self.now)
            )
        if self.inserts:
            await session.execute(insert(findings), self.inserts)
        if self.token_states:
            await session.execute(
                update(tokens)
                .where(tokens.c.id == bindparam("token_pk"))
                .values(
                    state=bindparam("new_state"),
                    state_reason=bindparam("new_reason"),
                    state_changed_at=bindparam("new_changed_at"),
                ),
                self.token_states,
            )
