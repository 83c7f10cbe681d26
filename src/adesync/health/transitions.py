"""Transitions: a token's (or the installation's) state or set of codes changed.

Listeners in :data:`ON_TRANSITION` (notify's outbox, registered by :mod:`adesync.wiring`) run
inside the transaction that stores the new state, so a transition is recorded together with
its notifications or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from adesync.health.catalogue import Severity, State
from adesync.health.messages import TokenLabel
from adesync.health.model import Finding, stamp

__all__ = ["ON_TRANSITION", "Transition", "TransitionListener", "log_transitions"]

log = logging.getLogger("adesync.health")


@dataclass(frozen=True)
class Transition:
    """``token`` is ``None`` for the installation (findings about no token). ``old_state`` is
    ``None`` the first time a token is evaluated. Codes are those of error and warning
    findings (info findings change no state and are not announced); ``findings`` are all
    current findings of the subject."""

    token: TokenLabel | None
    expires_at: datetime | None
    old_state: State | None
    new_state: State
    old_codes: frozenset[str]
    new_codes: frozenset[str]
    state_reason: str | None
    findings: tuple[Finding, ...]
    at: datetime

    @property
    def added(self) -> list[str]:
        return sorted(self.new_codes - self.old_codes)

    @property
    def cleared(self) -> list[str]:
        return sorted(self.old_codes - self.new_codes)

    def subject_key(self) -> str:
        return "installation" if self.token is None else f"token-{self.token.id}"


def announced_codes(findings: Sequence[Finding]) -> frozenset[str]:
    """The codes that make up a subject's state for transitions (error and warning ones)."""
    return frozenset(f.code for f in findings if f.severity is not Severity.INFO)


TransitionListener = Callable[[AsyncSession, Sequence[Transition]], Awaitable[None]]

ON_TRANSITION: list[TransitionListener] = []


def log_transitions(transitions: Sequence[Transition]) -> None:
    """One log record per transition, its fields under ``extra`` (the JSON formatter in
    :mod:`adesync.notify.logs` writes them as one JSON line)."""
    for change in transitions:
        name = None if change.token is None else change.token.name
        log.log(
            logging.INFO,
            "health of %s changed from %s to %s (%s)",
            name or "the installation",
            change.old_state.value if change.old_state else "unknown",
            change.new_state.value,
            ", ".join(sorted(change.new_codes)) or "no findings",
            extra={
                "event": "health.transition",
                "token": name,
                "org_name": None if change.token is None else change.token.org_name,
                "old_state": change.old_state.value if change.old_state else None,
                "new_state": change.new_state.value,
                "state_reason": change.state_reason,
                "codes": sorted(change.new_codes),
                "added": change.added,
                "cleared": change.cleared,
                "at": stamp(change.at),
            },
        )
