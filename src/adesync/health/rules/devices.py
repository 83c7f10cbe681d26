"""Rules about devices, profiles and assignments: aggregate queries grouped by token, never a
Python loop over devices."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    case,
    exists,
    false,
    func,
    literal_column,
    select,
)

from adesync.health.catalogue import Severity
from adesync.health.model import Finding, rule, stamp
from adesync.health.profile_limits import ProfileProblem, problem_for_apple_code, validate_profile
from adesync.health.rules.context import RuleContext, TokenFacts
from adesync.store.tables_sync import assignments, devices, profiles

__all__ = [
    "assignment_failed",
    "count_and_sample",
    "devices_without_profile",
    "no_default_profile",
    "profile_invalid",
    "profile_not_found",
    "sample_serials",
    "token_over_capacity",
]

FAILING_STATUSES = ("NOT_ACCESSIBLE", "FAILED")
# Up to this many tokens in scope, count_and_sample asks token by token.
FEW_TOKENS = 4
NO_PROFILE_STATUSES = ("empty", "removed")


async def count_and_sample(ctx: RuleContext, rows: Select[Any]) -> dict[int, tuple[int, list[str]]]:
    """Per token: how many of ``rows`` (a select of ``token_id, serial_number, id``) there are,
    and up to ``sample_size`` of their serial numbers, the first stored (lowest ``id``), in one
    aggregate query.

    The rows are materialised first: that keeps both SQLite's and PostgreSQL's planners on
    the token indexes instead of scanning every device to rank a few.
    """
    if not ctx.whole_installation and len(ctx.tokens) <= FEW_TOKENS:
        return await _count_and_sample_each(ctx, rows)
    chosen = rows.cte("chosen").prefix_with("MATERIALIZED")
    total = func.count().over(partition_by=chosen.c.token_id).label("total")
    number = func.row_number().over(partition_by=chosen.c.token_id, order_by=chosen.c.id).label("n")
    ranked = select(chosen.c.token_id, chosen.c.serial_number, total, number).subquery()
    result = await ctx.session.execute(
        select(ranked.c.token_id, ranked.c.serial_number, ranked.c.total)
        .where(ranked.c.n <= ctx.limits.sample_size)
        .order_by(ranked.c.token_id, ranked.c.n)
    )
    found: dict[int, tuple[int, list[str]]] = {}
    for token_id, serial, count in result:
        found.setdefault(token_id, (int(count), []))[1].append(serial)
    return found


async def _count_and_sample_each(
    ctx: RuleContext, rows: Select[Any]
) -> dict[int, tuple[int, list[str]]]:
    """count_and_sample token by token, for a few tokens (after a sync): a count and a sample
    taken in index order, without ranking every row (a token of 200,000 devices without a
    profile took 0.6 s the other way)."""
    found: dict[int, tuple[int, list[str]]] = {}
    listed = rows.subquery()
    for token_id in ctx.token_ids:
        count = (
            await ctx.session.execute(
                select(func.count()).select_from(listed).where(listed.c.token_id == token_id)
            )
        ).scalar_one()
        if not count:
            continue
        sample = await ctx.session.execute(
            select(listed.c.serial_number)
            .where(listed.c.token_id == token_id)
            .order_by(listed.c.id)
            .limit(ctx.limits.sample_size)
        )
        found[token_id] = (int(count), list(sample.scalars()))
    return found


async def sample_serials(
    ctx: RuleContext, table: Table, conditions: Sequence[ColumnElement[bool]]
) -> dict[int, list[str]]:
    """Up to ``sample_size`` serial numbers per token of the rows of ``table`` (which has
    ``token_id`` and ``serial_number``) matching ``conditions``."""
    rows = select(table.c.token_id, table.c.serial_number, table.c.id).where(*conditions)
    return {
        token_id: serials for token_id, (_, serials) in (await count_and_sample(ctx, rows)).items()
    }


@rule("no_default_profile", Severity.WARNING)
async def no_default_profile(ctx: RuleContext) -> list[Finding]:
    """The token has no default enrollment profile for newly assigned devices."""
    return [ctx.finding(t) for t in ctx.tokens if not t.default_profile_uuid]


def _problem_data(problem: ProfileProblem) -> dict[str, Any]:
    return {"apple_code": problem.code, "field": problem.field, "limit": problem.limit}


@rule(
    "profile_invalid",
    Severity.ERROR,
    params=("apple_code", "field", "limit", "profile_name", "rejected_at"),
    variants=("required", "flags", "locale", "other", "stored"),
)
async def profile_invalid(ctx: RuleContext) -> list[Finding]:
    """Apple rejected a profile (no profile defined for the token since), or a stored profile
    breaks Apple's field limits."""
    defined = {
        token_id: at
        for token_id, at in await ctx.session.execute(
            select(profiles.c.token_id, func.max(profiles.c.defined_at))
            .where(ctx.in_scope(profiles.c.token_id))
            .group_by(profiles.c.token_id)
        )
    }
    stored: dict[int, tuple[str, ProfileProblem, int]] = {}
    rows = await ctx.session.execute(
        select(profiles.c.token_id, profiles.c.profile_name, profiles.c.definition)
        .where(ctx.in_scope(profiles.c.token_id))
        .order_by(profiles.c.token_id, profiles.c.defined_at)
    )
    for token_id, name, definition in rows:
        try:
            document = json.loads(definition)
        except ValueError:
            continue
        problems = validate_profile(document) if isinstance(document, dict) else []
        if problems:
            first_name, first, count = stored.get(token_id, (name, problems[0], 0))
            stored[token_id] = (first_name, first, count + 1)
    found = []
    for token in ctx.tokens:
        last_defined = defined.get(token.id)
        rejected = (
            token.profile_error_code == "profile_invalid"
            and token.profile_error_at is not None
            and (last_defined is None or last_defined < token.profile_error_at)
        )
        if rejected:
            problem = problem_for_apple_code(token.profile_error_body or "")
            variant = None if problem.kind == "length" else problem.kind
            found.append(
                ctx.finding(
                    token,
                    variant=variant,
                    rejected_at=stamp(token.profile_error_at),
                    **_problem_data(problem),
                )
            )
        elif token.id in stored:
            name, problem, count = stored[token.id]
            found.append(
                ctx.finding(
                    token,
                    count=count,
                    variant="stored",
                    profile_name=name,
                    **_problem_data(problem),
                )
            )
    return found


async def _latest_success(ctx: RuleContext, token_ids: list[int]) -> dict[int, Any]:
    rows = await ctx.session.execute(
        select(assignments.c.token_id, func.max(assignments.c.last_attempt_at))
        .where(assignments.c.token_id.in_(token_ids), assignments.c.status == "SUCCESS")
        .group_by(assignments.c.token_id)
    )
    return {token_id: at for token_id, at in rows}


async def _latest_definition(ctx: RuleContext, token_ids: list[int]) -> dict[int, Any]:
    rows = await ctx.session.execute(
        select(profiles.c.token_id, func.max(profiles.c.defined_at))
        .where(profiles.c.token_id.in_(token_ids))
        .group_by(profiles.c.token_id)
    )
    return {token_id: at for token_id, at in rows}


@rule(
    "profile_not_found",
    Severity.ERROR,
    params=("profile_uuid", "missing_at"),
    variants=("unknown",),
)
async def profile_not_found(ctx: RuleContext) -> list[Finding]:
    """Apple answered 404 for the profile that is still the token's default (the profile in
    use), and since then no profile was defined and no assignment succeeded. A profile Apple
    refused in a change that was not stored is no finding."""
    suspects: list[TokenFacts] = [
        t
        for t in ctx.tokens
        if t.profile_error_code == "profile_not_found"
        and t.profile_error_at
        and t.default_profile_uuid is not None
        and t.profile_error_uuid in (None, t.default_profile_uuid)
    ]
    if not suspects:
        return []
    ids = [t.id for t in suspects]
    succeeded = await _latest_success(ctx, ids)
    defined = await _latest_definition(ctx, ids)
    found = []
    for token in suspects:
        assert token.profile_error_at is not None
        later = [when for when in (succeeded.get(token.id), defined.get(token.id)) if when]
        if any(when > token.profile_error_at for when in later):
            continue
        found.append(
            ctx.finding(
                token,
                profile_uuid=token.profile_error_uuid or token.default_profile_uuid,
                missing_at=stamp(token.profile_error_at),
            )
        )
    return found


def _live_device(table: Table) -> ColumnElement[bool]:
    """No device with this serial on this token was deleted (released) in ABM/ASM."""
    return ~exists().where(
        devices.c.token_id == table.c.token_id,
        devices.c.serial_number == table.c.serial_number,
        devices.c.deleted.is_(True),
    )


@rule(
    "assignment_failed",
    Severity.WARNING,
    params=("not_accessible", "failed", "gave_up"),
)
async def assignment_failed(ctx: RuleContext) -> list[Finding]:
    """Serials whose latest assignment Apple answered ``NOT_ACCESSIBLE`` or ``FAILED``."""
    conditions = [
        ctx.in_scope(assignments.c.token_id),
        assignments.c.status.in_(FAILING_STATUSES),
        _live_device(assignments),
    ]
    not_accessible = func.sum(case((assignments.c.status == "NOT_ACCESSIBLE", 1), else_=0))
    gave_up = func.sum(
        case(
            (
                and_(assignments.c.status == "FAILED", assignments.c.next_attempt_at.is_(None)),
                1,
            ),
            else_=0,
        )
    )
    rows = (
        await ctx.session.execute(
            select(assignments.c.token_id, func.count(), not_accessible, gave_up)
            .where(*conditions)
            .group_by(assignments.c.token_id)
        )
    ).all()
    if not rows:
        return []
    samples = await count_and_sample(
        ctx,
        select(assignments.c.token_id, assignments.c.serial_number, assignments.c.id).where(
            *conditions
        ),
    )
    tokens = ctx.by_id()
    return [
        ctx.finding(
            tokens[token_id],
            count=count,
            samples=samples.get(token_id, (0, []))[1],
            not_accessible=int(inaccessible),
            failed=count - int(inaccessible),
            gave_up=int(stopped),
        )
        for token_id, count, inaccessible, stopped in rows
        if token_id in tokens
    ]


@rule("devices_without_profile", Severity.WARNING, params=("devices",), variants=("no_default",))
async def devices_without_profile(ctx: RuleContext) -> list[Finding]:
    """Live devices with no profile (``empty``/``removed``) and no assignment waiting."""
    waiting = exists().where(
        assignments.c.token_id == devices.c.token_id,
        assignments.c.serial_number == devices.c.serial_number,
        assignments.c.next_attempt_at.is_not(None),
    )
    bare = select(devices.c.token_id, devices.c.serial_number, devices.c.id).where(
        ctx.in_scope(devices.c.token_id),
        # Written as the partial index ix_devices_without_profile's predicate, with literal
        # values, so both planners can prove the index covers these rows.
        devices.c.deleted == false(),
        devices.c.profile_status.in_([literal_column(f"'{s}'") for s in NO_PROFILE_STATUSES]),
        ~waiting,
    )
    tokens = ctx.by_id()
    return [
        ctx.finding(
            tokens[token_id],
            count=count,
            samples=samples,
            variant=None if tokens[token_id].default_profile_uuid else "no_default",
            devices=count,
        )
        for token_id, (count, samples) in (await count_and_sample(ctx, bare)).items()
        if token_id in tokens
    ]


@rule("token_over_capacity", Severity.WARNING, params=("devices", "capacity"))
async def token_over_capacity(ctx: RuleContext) -> list[Finding]:
    """More live devices on one token than Apple's service handles well (200,000)."""
    capacity = ctx.limits.token_capacity
    # Device ids are never reused, so when the highest is within the capacity no token can be
    # over it: one index lookup instead of counting every device.
    highest = (await ctx.session.execute(select(func.max(devices.c.id)))).scalar()
    if highest is None or highest <= capacity:
        return []
    # Every device is read either way. Counted with FILTER, both databases read the whole
    # (token_id, deleted, ...) index in order, their fastest plan (a WHERE on ``deleted`` made
    # SQLite skip-scan it; the token sub-select made PostgreSQL join every device to tokens).
    # With every token in scope, the groups of tokens without credentials are dropped below.
    live = func.count().filter(devices.c.deleted == false())
    query = select(devices.c.token_id, live).group_by(devices.c.token_id).having(live > capacity)
    if not ctx.whole_installation:
        query = query.where(ctx.in_scope(devices.c.token_id))
    rows = await ctx.session.execute(query)
    tokens = ctx.by_id()
    return [
        ctx.finding(tokens[token_id], count=count, devices=count, capacity=capacity)
        for token_id, count in rows
        if token_id in tokens
    ]
