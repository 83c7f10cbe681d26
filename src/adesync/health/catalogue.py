"""Severities and token states, defined once for the CLI, API, console, metrics and alerts."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["Severity", "State", "exit_code_for", "state_for", "worst_severity"]


class Severity(StrEnum):
    """How bad a finding is: ``error`` ADE is broken now, ``warning`` it will break or is
    degraded, ``info`` worth knowing (never changes a token's state)."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class State(StrEnum):
    """A token's (or the whole report's) state: the worst of its error and warning findings."""

    HEALTHY = "healthy"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return {State.HEALTHY: 0, State.WARNING: 1, State.ERROR: 2}[self]


def worst_severity(severities: Iterable[Severity]) -> Severity | None:
    """The worst severity of ``severities`` (``None`` for none)."""
    worst: Severity | None = None
    for severity in severities:
        if worst is None or severity.rank > worst.rank:
            worst = severity
    return worst


def state_for(severities: Iterable[Severity]) -> State:
    """``error``/``warning`` from the worst finding; info findings leave a token healthy."""
    worst = worst_severity(severities)
    if worst is Severity.ERROR:
        return State.ERROR
    if worst is Severity.WARNING:
        return State.WARNING
    return State.HEALTHY


def exit_code_for(state: State) -> int:
    """The monitoring-check exit code: 0 healthy, 1 warning, 2 error (Nagios/Checkmk style)."""
    return state.rank
