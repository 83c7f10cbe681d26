"""Token health: the findings catalogue, the rules, stored state, the report and its alert.

Rules live in :mod:`adesync.health.rules` (one function per finding code, registered in
``RULES``); :func:`evaluate` runs them and stores each token's state; :func:`read_health` reads
what is stored; :func:`build_report` words it in ``en`` or ``zh-CN``.
"""

from adesync.health.catalogue import Severity, State, exit_code_for, state_for
from adesync.health.evaluate import Health, Seen, TokenHealth, evaluate
from adesync.health.messages import LANGUAGES, Door, TokenLabel, render_finding
from adesync.health.model import Finding, Rule
from adesync.health.report import build_alert, build_report, overall_state
from adesync.health.rules import RULES, RULES_BY_CODE
from adesync.health.stored import read_health
from adesync.health.transitions import ON_TRANSITION, Transition

__all__ = [
    "LANGUAGES",
    "ON_TRANSITION",
    "RULES",
    "RULES_BY_CODE",
    "Door",
    "Finding",
    "Health",
    "Rule",
    "Seen",
    "Severity",
    "State",
    "TokenHealth",
    "TokenLabel",
    "Transition",
    "build_alert",
    "build_report",
    "evaluate",
    "exit_code_for",
    "overall_state",
    "read_health",
    "render_finding",
    "state_for",
]
