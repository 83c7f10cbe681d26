"""What a rule returns (:class:`Finding`) and how a rule is declared (:class:`Rule`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from adesync.health.catalogue import Severity

if TYPE_CHECKING:
    from adesync.health.rules.context import RuleContext

__all__ = ["Check", "Finding", "Param", "Rule", "rule", "stamp"]

# A message parameter. Timestamps are ISO 8601 strings ending in ``Z``; the renderer words
# every parameter whose name ends in ``_at`` as a time and ``_on`` as a date.
Param = str | int | float | bool | None


def stamp(value: datetime | None) -> str | None:
    """``value`` as the ISO 8601 UTC string findings keep (to the second, ``Z``)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Finding:
    """One thing a rule detected: ``token_id`` is ``None`` for the installation as a whole;
    ``count`` how many things are affected (devices, serials, tokens; 1 for the token itself);
    ``samples`` a few of them (serial numbers); ``data`` the message parameters; ``variant``
    picks an alternative wording (``detail_<variant>`` in the message catalogue)."""

    code: str
    severity: Severity
    token_id: int | None
    count: int = 1
    samples: tuple[str, ...] = ()
    data: Mapping[str, Param] = field(default_factory=dict)
    variant: str | None = None


Check = Callable[["RuleContext"], Awaitable[list[Finding]]]


@dataclass(frozen=True)
class Rule:
    """A finding code and the function that detects it.

    ``severity`` is the usual severity and ``max_severity`` the worst it escalates to;
    ``params`` names every key the rule may put in ``data`` (the message catalogue may use
    those and the token's ``token``, ``org``, ``portal`` and ``server``); ``variants`` names
    the alternative wordings; ``installation`` rules run only when every token is evaluated
    and return findings about no token.
    """

    code: str
    severity: Severity
    max_severity: Severity
    check: Check
    params: frozenset[str]
    variants: tuple[str, ...]
    installation: bool


def rule(
    code: str,
    severity: Severity,
    *,
    params: tuple[str, ...] = (),
    variants: tuple[str, ...] = (),
    max_severity: Severity | None = None,
    installation: bool = False,
) -> Callable[[Check], Rule]:
    """Declare ``check`` as the rule for ``code`` (register it in :mod:`adesync.health.rules`)."""

    def declare(check: Check) -> Rule:
        return Rule(
            code=code,
            severity=severity,
            max_severity=max_severity or severity,
            check=check,
            params=frozenset(params),
            variants=variants,
            installation=installation,
        )

    return declare
