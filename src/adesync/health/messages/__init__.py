"""The message catalogues (one JSON file per language beside this module) and the wording of
findings, states and the alert.

A translator edits ``<lang>.json`` only: ``codes.<code>`` has ``title``, ``detail``,
``remediation`` (numbered steps) and ``actor`` (who must act), each with ``{name}``
placeholders; ``title_<variant>``/``detail_<variant>`` are alternative wordings a rule picks.
``<key>_web`` (and ``<key>_web_<variant>``) is the wording for the web door (the console, the
API and notifications) where the CLI's names a shell command: it names the console's buttons
and forms, and an operator-only step says to ask the operator. Every finding may use
``token``, ``org``, ``server``, ``portal``, ``portal_url`` and ``count`` besides the
parameters its rule declares.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import lru_cache
from importlib import resources
from typing import Any, cast

from adesync.health.model import Finding, Param

__all__ = [
    "DEFAULT_DOCS_URL",
    "LANGUAGES",
    "TOKEN_PARAMS",
    "Door",
    "TokenLabel",
    "catalogue",
    "doc_url",
    "format_param",
    "message",
    "message_list",
    "render_finding",
    "wording",
]

LANGUAGES: tuple[str, ...] = ("en", "zh-CN")
DEFAULT_DOCS_URL = "/help/findings"
TOKEN_PARAMS = frozenset({"token", "org", "server", "portal", "portal_url"})
_MISSING = "—"


class Door(Enum):
    """Who reads a text: ``CLI`` (``adesync diagnose``) names commands and flags; ``WEB`` (the
    console, the API and notifications) names the console's buttons and never a shell command."""

    CLI = "cli"
    WEB = "web"


@dataclass(frozen=True)
class TokenLabel:
    """What messages say about a token: its name, organisation, MDM server and portal."""

    id: int
    name: str
    org_name: str | None
    server_name: str | None
    token_type: str

    @property
    def org(self) -> str:
        return self.org_name or self.name


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(lang: str) -> dict[str, Any]:
    """The parsed catalogue of ``lang`` (``en`` or ``zh-CN``); ValueError for another."""
    if lang not in LANGUAGES:
        raise ValueError(f"no messages for language {lang!r}")
    text = resources.files(__name__).joinpath(f"{lang}.json").read_text(encoding="utf-8")
    return cast(dict[str, Any], json.loads(text))


class _Params(dict[str, str]):
    """Placeholders a message names but the finding lacks read as a dash, never a crash."""

    def __missing__(self, key: str) -> str:
        return _MISSING


def format_param(name: str, value: Param) -> str:
    """A parameter as text: ``*_at`` timestamps as ``YYYY-MM-DD HH:MM UTC``, ``*_on`` as a
    date, integers with thousands separators, ``None`` as a dash."""
    if value is None:
        return _MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str) and (name.endswith("_at") or name.endswith("_on")):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if name.endswith("_on"):
            return moment.strftime("%Y-%m-%d")
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def _token_params(lang: str, token: TokenLabel | None) -> dict[str, str]:
    if token is None:
        return {}
    messages = catalogue(lang)
    kind = token.token_type if token.token_type in messages["portals"] else "abm"
    return {
        "token": token.name,
        "org": token.org,
        "server": token.server_name or token.name,
        "portal": messages["portals"][kind],
        "portal_url": messages["portal_urls"][kind],
    }


def _params(lang: str, finding: Finding, token: TokenLabel | None) -> _Params:
    params = _Params({key: format_param(key, value) for key, value in finding.data.items()})
    params["count"] = format_param("count", finding.count)
    params.update(_token_params(lang, token))
    return params


def message(lang: str, section: str, key: str, *, door: Door = Door.CLI, **params: Param) -> str:
    """One text of a catalogue section (``alert``, ``report``, ``notify``, ...) filled in, in
    the wording of ``door`` (``<key>_web`` for the web where the section has it)."""
    template: str = _pick(catalogue(lang)[section], key, None, door)
    return template.format_map(_Params({k: format_param(k, v) for k, v in params.items()}))


def message_list(lang: str, section: str, key: str) -> list[str]:
    return list(catalogue(lang)[section][key])


def _pick(entry: Mapping[str, Any], key: str, variant: str | None, door: Door) -> Any:
    """The most specific wording of ``key``: for the web ``<key>_web_<variant>``, then
    ``<key>_web``; then ``<key>_<variant>``, then ``<key>``."""
    slots = (f"{key}_web", key) if door is Door.WEB else (key,)
    for slot in slots:
        if variant is not None and f"{slot}_{variant}" in entry:
            return entry[f"{slot}_{variant}"]
        if slot in entry:
            return entry[slot]
    raise KeyError(key)


def wording(
    lang: str, code: str, key: str, *, door: Door = Door.CLI, variant: str | None = None
) -> Any:
    """The unfilled text of ``codes.<code>.<key>`` (a list for ``remediation``) that ``door``
    reads in ``lang``."""
    return _pick(catalogue(lang)["codes"][code], key, variant, door)


def doc_url(code: str, docs_url: str | None = None) -> str:
    """The documentation link of ``code``: ``ADESYNC_DOCS_URL`` (default the page ``serve``
    shows at /help/findings) plus ``#<code>``."""
    return f"{(docs_url or DEFAULT_DOCS_URL).rstrip('#')}#{code}"


def render_finding(
    finding: Finding,
    token: TokenLabel | None,
    lang: str,
    *,
    docs_url: str | None = None,
    door: Door = Door.CLI,
) -> dict[str, Any]:
    """The finding as the CLI JSON, API and notifications show it, worded in ``lang`` for
    ``door``: ``code, severity, token, title, detail, remediation, doc_url, count, samples``
    plus ``org_name`` and ``actor``."""
    entry = catalogue(lang)["codes"][finding.code]
    params = _params(lang, finding, token)
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "token": None if token is None else token.name,
        "org_name": None if token is None else token.org_name,
        "title": _pick(entry, "title", finding.variant, door).format_map(params),
        "detail": _pick(entry, "detail", finding.variant, door).format_map(params),
        "remediation": [
            step.format_map(params) for step in _pick(entry, "remediation", finding.variant, door)
        ],
        "actor": _pick(entry, "actor", finding.variant, door).format_map(params),
        "doc_url": doc_url(finding.code, docs_url),
        "count": finding.count,
        "samples": list(finding.samples),
    }
