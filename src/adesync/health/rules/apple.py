"""Rules reading what Apple answered: the flags and failure streak the sync engine records on
each token, and its sync runs. A flag is set by Apple's error and cleared by the next successful
call, so these findings clear on their own once the cause is fixed and a sync or check ran."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from adesync.health.catalogue import Severity
from adesync.health.model import Finding, rule, stamp
from adesync.health.rules.context import RuleContext, TokenFacts
from adesync.store.tables_sync import assignments, sync_runs

__all__ = [
    "access_denied",
    "apple_throttled",
    "apple_unavailable",
    "clock_skew",
    "cursor_recovered",
    "terms_not_accepted",
    "token_rejected",
    "user_agent_rejected",
]


def _since(token: TokenFacts) -> str | None:
    return stamp(token.failing_since or token.last_error_at)


def _skewed(ctx: RuleContext, token: TokenFacts) -> bool:
    skew = token.clock_skew_seconds
    return skew is not None and abs(skew) > ctx.limits.clock_skew_limit_seconds


@rule("terms_not_accepted", Severity.ERROR, params=("since_at",))
async def terms_not_accepted(ctx: RuleContext) -> list[Finding]:
    """Apple answered 403 ``T_C_NOT_SIGNED``."""
    return [ctx.finding(t, since_at=_since(t)) for t in ctx.tokens if t.terms_not_accepted]


@rule("token_rejected", Severity.ERROR, params=("since_at", "status"))
async def token_rejected(ctx: RuleContext) -> list[Finding]:
    """Apple rejected the token (401 on ``/session``, ``token_rejected``/``signature_invalid``),
    unless the clock is off by more than the limit: then ``clock_skew`` explains it."""
    return [
        ctx.finding(t, since_at=_since(t), status=t.last_error_status)
        for t in ctx.tokens
        if (t.token_rejected or t.failing_with("token_rejected")) and not _skewed(ctx, t)
    ]


@rule("access_denied", Severity.ERROR, params=("since_at",))
async def access_denied(ctx: RuleContext) -> list[Finding]:
    """Apple answered 403 ``ACCESS_DENIED``: the MDM server is gone or lost access."""
    return [ctx.finding(t, since_at=_since(t)) for t in ctx.tokens if t.access_denied]


@rule("user_agent_rejected", Severity.ERROR, params=("since_at", "body"))
async def user_agent_rejected(ctx: RuleContext) -> list[Finding]:
    """Apple answered 400 ``USER_AGENT_MISSING``/``USER_AGENT_INVALID``."""
    return [
        ctx.finding(t, since_at=_since(t), body=(t.last_error_body or "").strip()[:100])
        for t in ctx.tokens
        if t.failing_with("user_agent_rejected")
    ]


@rule(
    "apple_unavailable",
    Severity.WARNING,
    params=("since_at", "failures", "status"),
    variants=("network",),
)
async def apple_unavailable(ctx: RuleContext) -> list[Finding]:
    """The current failure streak ends in network errors or 5xx answers (each recorded failure
    already includes the client's own retries with backoff)."""
    return [
        ctx.finding(
            t,
            variant="network" if t.last_error_status is None else None,
            since_at=_since(t),
            failures=t.consecutive_failures,
            status=t.last_error_status,
        )
        for t in ctx.tokens
        if t.failing_with("apple_unavailable")
    ]


@rule(
    "apple_throttled",
    Severity.INFO,
    params=("resumes_at", "serials"),
    variants=("no_time", "serials"),
)
async def apple_throttled(ctx: RuleContext) -> list[Finding]:
    """Apple asked adesync to wait (429, 503 with ``Retry-After``) or answered ``THROTTLED``
    for serials whose assignment is retried later."""
    rows = await ctx.session.execute(
        select(assignments.c.token_id, func.count(), func.min(assignments.c.next_attempt_at))
        .where(
            ctx.in_scope(assignments.c.token_id),
            assignments.c.status == "THROTTLED",
            assignments.c.next_attempt_at.is_not(None),
        )
        .group_by(assignments.c.token_id)
    )
    serials = {token_id: (count, resumes) for token_id, count, resumes in rows}
    found = []
    for token in ctx.tokens:
        count, serials_resume = serials.get(token.id, (0, None))
        throttled = token.throttled_until is not None and token.throttled_until > ctx.now
        if throttled or token.failing_with("apple_throttled"):
            found.append(
                ctx.finding(
                    token,
                    variant=None if token.throttled_until is not None else "no_time",
                    resumes_at=stamp(token.throttled_until),
                    serials=count,
                )
            )
        elif count:
            found.append(
                ctx.finding(
                    token,
                    count=count,
                    variant="serials",
                    resumes_at=stamp(serials_resume),
                    serials=count,
                )
            )
    return found


@rule(
    "clock_skew",
    Severity.WARNING,
    max_severity=Severity.ERROR,
    params=("skew_seconds", "skew_minutes"),
    variants=("behind", "rejected", "behind_rejected"),
)
async def clock_skew(ctx: RuleContext) -> list[Finding]:
    """The local clock differs from Apple's ``Date`` by more than five minutes; an error when
    Apple has just rejected the sign-in because of it."""
    found = []
    for token in ctx.tokens:
        rejected = token.failing_with("clock_skew") or (
            _skewed(ctx, token) and (token.token_rejected or token.failing_with("token_rejected"))
        )
        if not (_skewed(ctx, token) or rejected):
            continue
        skew = token.clock_skew_seconds or 0.0
        parts = ["behind"] if skew < 0 else []
        if rejected:
            parts.append("rejected")
        found.append(
            ctx.finding(
                token,
                severity=Severity.ERROR if rejected else Severity.WARNING,
                variant="_".join(parts) or None,
                skew_seconds=round(abs(skew)),
                skew_minutes=round(abs(skew) / 60),
            )
        )
    return found


@rule("cursor_recovered", Severity.INFO, params=("recovered_at",))
async def cursor_recovered(ctx: RuleContext) -> list[Finding]:
    """A sync in the last day found its cursor expired or invalid and ran a full fetch itself."""
    since = ctx.now - timedelta(hours=ctx.limits.cursor_recovered_hours)
    rows = await ctx.session.execute(
        select(sync_runs.c.token_id, func.max(sync_runs.c.started_at))
        .where(
            ctx.in_scope(sync_runs.c.token_id),
            sync_runs.c.cursor_recovered.is_(True),
            sync_runs.c.started_at >= since,
        )
        .group_by(sync_runs.c.token_id)
    )
    recovered = {token_id: at for token_id, at in rows}
    return [
        ctx.finding(token, recovered_at=stamp(recovered[token.id]))
        for token in ctx.tokens
        if token.id in recovered
    ]
