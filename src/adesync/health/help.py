"""The findings documentation: per-code help entries in the reader's language (for the
console's ``/help/findings``) and the Markdown page shipped in the package.

``findings.md`` lives beside this module so it is inside every wheel; ``docs/findings.md`` in
the repository is a symbolic link to it, so there is one text to edit.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from adesync.health.messages import Door, catalogue, doc_url, wording
from adesync.health.rules import RULES

__all__ = ["findings_markdown", "help_entries"]


def help_entries(
    lang: str, *, docs_url: str | None = None, door: Door = Door.CLI
) -> list[dict[str, Any]]:
    """One entry per finding code, in registry order: ``code, severity, max_severity, title,
    cause, remediation (steps with placeholders for the token), who, doc_url``; cause, steps and who
    worded for ``door``."""
    messages = catalogue(lang)
    generic = messages["help_params"]
    entries = []
    for rule in RULES:
        entry = messages["codes"][rule.code]
        entries.append(
            {
                "code": rule.code,
                "severity": rule.severity.value,
                "max_severity": rule.max_severity.value,
                "title": entry["name"],
                "cause": wording(lang, rule.code, "cause", door=door),
                "remediation": [
                    step.format_map(generic)
                    for step in wording(lang, rule.code, "remediation", door=door)
                ],
                "who": wording(lang, rule.code, "actor", door=door).format_map(generic),
                "doc_url": doc_url(rule.code, docs_url),
            }
        )
    return entries


@lru_cache(maxsize=1)
def findings_markdown() -> str:
    """The text of ``findings.md``: one section per code (anchor ``#<code>``), linking
    Apple's pages."""
    return resources.files("adesync.health").joinpath("findings.md").read_text(encoding="utf-8")
