"""One cause per fault: which finding hides which on the same token.

An expired token is also rejected by Apple, and a rejected token also stops syncing; showing
every consequence gives the admin several causes and several fixes for one fault. The table
below is the only place that says which finding explains which; :func:`one_cause_per_fault`
applies it to what the rules found, before anything counts toward a state, an alert or an exit
code. ``findings.md`` ("One cause per fault") documents the same table, and a test holds the
two together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from adesync.health.model import Finding

__all__ = ["HIDES", "Suppressed", "hidden_by", "one_cause_per_fault"]

# The consequences of a token Apple refuses: nothing syncs, assignments and enrollments stall.
_REFUSED_TOKEN_SYMPTOMS = frozenset(
    {"sync_stale", "devices_without_profile", "assignment_failed", "pushed_not_enrolled"}
)

# cause -> the findings it hides on the same token (in the order causes are looked for).
HIDES: Mapping[str, frozenset[str]] = {
    "token_expired": frozenset({"token_rejected"}),
    "token_rejected": _REFUSED_TOKEN_SYMPTOMS,
    "access_denied": _REFUSED_TOKEN_SYMPTOMS,
    "terms_not_accepted": _REFUSED_TOKEN_SYMPTOMS,
}


@dataclass(frozen=True)
class Suppressed:
    """A finding the rules raised but another finding on its token explains: ``hidden_by`` is
    the code that is shown for that fault."""

    finding: Finding
    hidden_by: str


def hidden_by(code: str, present: Iterable[str]) -> str | None:
    """The shown code that explains ``code`` among the ``present`` codes of one token, or
    ``None`` when ``code`` is shown itself. A hider that is hidden in turn passes the fault
    on to what hides it (expired → rejected → stale sync: the stale sync is the expiry's)."""
    codes = frozenset(present)
    cause: str | None = None
    seen = {code}
    current = code
    while True:
        hider = next(
            (c for c, hidden in HIDES.items() if current in hidden and c in codes and c != current),
            None,
        )
        if hider is None or hider in seen:
            return cause
        cause = current = hider
        seen.add(hider)


def one_cause_per_fault(found: Iterable[Finding]) -> tuple[list[Finding], list[Suppressed]]:
    """Split ``found`` into the findings shown and those another finding of the same token
    explains. Findings about no token are never hidden. Order is kept in both lists."""
    found = list(found)
    codes: dict[int, set[str]] = defaultdict(set)
    for finding in found:
        if finding.token_id is not None:
            codes[finding.token_id].add(finding.code)
    shown: list[Finding] = []
    suppressed: list[Suppressed] = []
    for finding in found:
        cause = (
            None if finding.token_id is None else hidden_by(finding.code, codes[finding.token_id])
        )
        if cause is None:
            shown.append(finding)
        else:
            suppressed.append(Suppressed(finding, cause))
    return shown, suppressed
