"""Rules about devices finishing MDM enrollment: devices that downloaded their ADE profile but
never enrolled, and enrollment URLs that devices cannot reach. Aggregate queries by token.

The enrollment package (and httpx with it) is imported only once a rule has something to look
at: an installation without MDM events or failed probes does not pay for it on every diagnose.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import case, func, or_, select

from adesync.health.catalogue import Severity
from adesync.health.model import Finding, rule, stamp
from adesync.health.rules.context import RuleContext
from adesync.health.rules.devices import sample_serials
from adesync.store.tables_enrollment import enrollment_events, enrollment_url_probes
from adesync.store.tables_sync import devices

if TYPE_CHECKING:
    from adesync.enrollment.probe import ProfileInUse

__all__ = ["PUSHED_GRACE", "enrollment_url_unreachable", "pushed_not_enrolled"]

# A device that downloaded its profile this long ago and has not enrolled is stuck.
PUSHED_GRACE = timedelta(hours=24)


async def _tokens_with_events(ctx: RuleContext) -> list[int]:
    """Tokens in scope whose devices have MDM events at all (a webhook or an import feeds
    them). An installation without any events costs one index probe: given the join, SQLite's
    planner walks every device."""
    if (await ctx.session.execute(select(enrollment_events.c.id).limit(1))).first() is None:
        return []
    rows = await ctx.session.execute(
        select(devices.c.token_id)
        .join(enrollment_events, enrollment_events.c.serial_number == devices.c.serial_number)
        .where(ctx.in_scope(devices.c.token_id))
        .distinct()
    )
    return [row[0] for row in rows]


@rule(
    "pushed_not_enrolled",
    Severity.WARNING,
    params=("devices", "failed", "oldest_push_at"),
    variants=("failed",),
)
async def pushed_not_enrolled(ctx: RuleContext) -> list[Finding]:
    """Live devices that downloaded their ADE profile over 24 hours ago and never enrolled,
    on tokens whose devices have MDM enrollment events at all (so a site with no webhook is
    not told every device is stuck)."""
    fed = await _tokens_with_events(ctx)
    if not fed:
        return []
    from adesync.enrollment.model import EnrollmentState

    stuck = (EnrollmentState.PUSHED.value, EnrollmentState.FAILED.value)
    conditions = [
        devices.c.token_id.in_(fed),
        devices.c.deleted.is_(False),
        devices.c.profile_status == "pushed",
        devices.c.profile_push_time < ctx.now - PUSHED_GRACE,
        devices.c.enrollment_state.in_(stuck),
    ]
    failed = func.sum(
        case((devices.c.enrollment_state == EnrollmentState.FAILED.value, 1), else_=0)
    )
    rows = (
        await ctx.session.execute(
            select(devices.c.token_id, func.count(), failed, func.min(devices.c.profile_push_time))
            .where(*conditions)
            .group_by(devices.c.token_id)
        )
    ).all()
    if not rows:
        return []
    samples = await sample_serials(ctx, devices, conditions)
    tokens = ctx.by_id()
    return [
        ctx.finding(
            tokens[token_id],
            count=count,
            samples=samples.get(token_id, []),
            variant="failed" if int(failures or 0) else None,
            devices=count,
            failed=int(failures or 0),
            oldest_push_at=stamp(oldest),
        )
        for token_id, count, failures, oldest in rows
        if token_id in tokens
    ]


async def _waiting(ctx: RuleContext, token_ids: list[int]) -> dict[tuple[int, str], int]:
    """Live, not enrolled devices per (token, profile UUID)."""
    from adesync.enrollment.model import EnrollmentState

    rows = await ctx.session.execute(
        select(devices.c.token_id, devices.c.profile_uuid, func.count())
        .where(
            devices.c.token_id.in_(token_ids),
            devices.c.deleted.is_(False),
            devices.c.profile_uuid.is_not(None),
            or_(
                devices.c.enrollment_state.is_(None),
                devices.c.enrollment_state != EnrollmentState.ENROLLED.value,
            ),
        )
        .group_by(devices.c.token_id, devices.c.profile_uuid)
    )
    return {(token_id, uuid): count for token_id, uuid, count in rows}


@rule(
    "enrollment_url_unreachable",
    Severity.WARNING,
    params=("url", "error", "devices", "profile_name", "profiles", "probed_at"),
    variants=("several",),
)
async def enrollment_url_unreachable(ctx: RuleContext) -> list[Finding]:
    """The latest HTTPS probe of the enrollment URL of a profile in use failed (connection,
    timeout, TLS trusting the profile's anchors, or 5xx). Names the URL with the most devices
    waiting, and how many devices wait on the failing profiles."""
    failed_probes = await ctx.session.execute(
        select(enrollment_url_probes.c.probe_key).where(enrollment_url_probes.c.ok.is_(False))
    )
    if failed_probes.first() is None:
        return []
    from adesync.enrollment.probe import profiles_in_use, shown_error, stored_probes

    in_use = await profiles_in_use(ctx.session, ctx.token_ids)
    if not in_use:
        return []
    probes = await stored_probes(ctx.session, sorted({p.key for p in in_use}))
    failing: dict[int, list[ProfileInUse]] = defaultdict(list)
    for profile in in_use:
        probe = probes.get(profile.key)
        if probe is not None and not probe.ok:
            failing[profile.token_id].append(profile)
    if not failing:
        return []
    waiting = await _waiting(ctx, sorted(failing))
    tokens = ctx.by_id()
    found = []
    for token_id, broken in sorted(failing.items()):
        if token_id not in tokens:
            continue
        counts = {p.profile_uuid: waiting.get((token_id, p.profile_uuid), 0) for p in broken}
        worst = max(broken, key=lambda p: (counts[p.profile_uuid], p.profile_name))
        probe = probes[worst.key]
        total = sum(counts.values())
        found.append(
            ctx.finding(
                tokens[token_id],
                count=total,
                variant="several" if len(broken) > 1 else None,
                url=worst.url,
                error=shown_error(probe.error_kind),
                devices=total,
                profile_name=worst.profile_name,
                profiles=len(broken),
                probed_at=stamp(probe.probed_at),
            )
        )
    return found
