"""The rule registry: every finding code adesync detects, in the order reports list ties.

Adding a code is adding one function (declared with :func:`adesync.health.model.rule`) to a
module here, one line to :data:`RULES`, its messages in every file under
``adesync/health/messages/`` and its section in ``findings.md``; the catalogue tests check
that nothing is missing.
"""

from __future__ import annotations

from adesync.health.model import Rule
from adesync.health.rules import apple, devices, enrollment, sync, token
from adesync.health.rules.context import RuleContext, TokenFacts, load_token_facts

__all__ = ["RULES", "RULES_BY_CODE", "RuleContext", "TokenFacts", "load_token_facts"]

RULES: tuple[Rule, ...] = (
    token.token_expired,
    apple.token_rejected,
    apple.clock_skew,
    apple.access_denied,
    apple.terms_not_accepted,
    token.duplicate_server,
    apple.user_agent_rejected,
    sync.sync_failing,
    devices.profile_not_found,
    devices.profile_invalid,
    sync.sync_stale,
    token.token_expiring,
    sync.never_synced,
    apple.apple_unavailable,
    token.certificate_expiring,
    devices.no_default_profile,
    devices.assignment_failed,
    devices.devices_without_profile,
    enrollment.pushed_not_enrolled,
    enrollment.enrollment_url_unreachable,
    devices.token_over_capacity,
    sync.scheduler_down,
    sync.notifications_failing,
    apple.apple_throttled,
    apple.cursor_recovered,
    token.personal_apple_id,
)

RULES_BY_CODE: dict[str, Rule] = {r.code: r for r in RULES}
