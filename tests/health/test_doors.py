"""Each door its own remedy: the CLI's steps name commands; the web's (the console, the API and
notifications) name the console's buttons and forms, and never a shell command."""

from __future__ import annotations

import re
import string
from typing import Any

import pytest

from adesync.cli import COMMANDS
from adesync.health import (
    LANGUAGES,
    RULES,
    Door,
    Finding,
    Rule,
    TokenLabel,
    messages,
    render_finding,
)
from adesync.health.catalogue import State
from adesync.health.evaluate import TokenHealth
from adesync.health.help import help_entries
from adesync.health.messages import TOKEN_PARAMS, catalogue, message
from adesync.health.report import build_alert
from tests.health.factory import NOW

# A shell command: `backticked text`, ``adesync <command>``, or an option flag.
SHELL = re.compile(
    r"`|\badesync\s+(?:" + "|".join(map(re.escape, COMMANDS)) + r")\b|(?:^|\s)--[a-z]"
)
TOKEN = TokenLabel(1, "north", "Example School", "MDM North", "asm")
WORDED = ("title", "detail", "actor")


def sample(rule: Rule, variant: str | None) -> Finding:
    data = {name: "2030-01-02T03:04:05Z" if name.endswith("_at") else 7 for name in rule.params}
    return Finding(
        rule.code, rule.severity, None if rule.installation else 1, 3, ("S1",), data, variant
    )


def rendered(rule: Rule, variant: str | None, lang: str, door: Door) -> dict[str, Any]:
    token = None if rule.installation else TOKEN
    return render_finding(sample(rule, variant), token, lang, door=door)


def texts(document: dict[str, Any]) -> list[str]:
    return [*(document[key] for key in WORDED), *document["remediation"]]


def as_list(text: str | list[str]) -> list[str]:
    return text if isinstance(text, list) else [text]


def placeholders(text: str | list[str]) -> set[str]:
    return {
        name for item in as_list(text) for _, name, _, _ in string.Formatter().parse(item) if name
    }


WORDINGS = [
    pytest.param(rule, variant, lang, id=f"{rule.code}-{variant or 'base'}-{lang}")
    for rule in RULES
    for variant in (None, *rule.variants)
    for lang in LANGUAGES
]


@pytest.mark.parametrize(("rule", "variant", "lang"), WORDINGS)
def test_the_web_wording_names_no_shell_command(rule: Rule, variant: str | None, lang: str) -> None:
    for text in texts(rendered(rule, variant, lang, Door.WEB)):
        assert not SHELL.search(text), f"{rule.code}: {text}"
        assert "{" not in text and "—" not in text, f"{rule.code}: a placeholder unfilled: {text}"


def without_web_wordings(lang: str) -> dict[str, Any]:
    """The catalogue as it was before the web had its own wording."""
    stripped = dict(catalogue(lang))
    stripped["codes"] = {
        code: {key: text for key, text in entry.items() if "_web" not in key}
        for code, entry in stripped["codes"].items()
    }
    return stripped


@pytest.mark.parametrize(("rule", "variant", "lang"), WORDINGS)
def test_the_cli_wording_is_unchanged(
    rule: Rule, variant: str | None, lang: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = rendered(rule, variant, lang, Door.CLI)
    assert rendered(rule, variant, lang, Door.WEB) != cli or not any(map(SHELL.search, texts(cli)))
    monkeypatch.setattr(messages, "catalogue", without_web_wordings)
    assert rendered(rule, variant, lang, Door.CLI) == cli
    assert rendered(rule, variant, lang, Door.WEB) == cli  # no web wording: the CLI's stands


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_text_that_names_a_command_has_a_web_wording(lang: str) -> None:
    commanded = set()
    for rule in RULES:
        entry = catalogue(lang)["codes"][rule.code]
        for key, text in entry.items():
            if "_web" in key or not any(SHELL.search(t) for t in as_list(text)):
                continue
            commanded.add(rule.code)
            base, _, variant = key.partition("_")
            web = f"{base}_web_{variant}" if variant else f"{base}_web"
            assert web in entry, f"{lang}: {rule.code}.{key} names a command and has no {web}"
    # The CLI keeps its commands.
    assert {"token_rejected", "token_expired", "scheduler_down", "clock_skew"} <= commanded


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_a_web_wording_keeps_the_facts_of_its_cli_wording(rule: Rule) -> None:
    """Same step count, and no placeholder the CLI's text could not use."""
    for lang in LANGUAGES:
        entry = catalogue(lang)["codes"][rule.code]
        for key, text in entry.items():
            base, web, variant = key.partition("_web")
            if not web:
                continue
            cli = entry.get(f"{base}{variant}", entry[base])
            if base == "remediation":
                assert len(text) == len(cli), f"{lang}: {rule.code}.{key} step count"
            extra = placeholders(text) - placeholders(cli) - TOKEN_PARAMS
            assert not extra, f"{lang}: {rule.code}.{key} uses {extra}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_a_variant_keeps_its_own_web_wording(rule: Rule) -> None:
    """``<key>_web`` would otherwise hide ``<key>_<variant>`` from the web."""
    for lang in LANGUAGES:
        entry = catalogue(lang)["codes"][rule.code]
        for variant in rule.variants:
            for base in ("title", "detail", "remediation", "actor"):
                if f"{base}_web" in entry and f"{base}_{variant}" in entry:
                    assert f"{base}_web_{variant}" in entry, f"{lang}: {rule.code}.{base}"


def test_zh_cn_has_every_web_wording_english_has() -> None:
    english, chinese = catalogue("en"), catalogue("zh-CN")
    for section in english:
        if isinstance(english[section], dict):
            assert set(english[section]) <= set(chinese[section]), section
    for code, entry in english["codes"].items():
        assert entry.keys() == chinese["codes"][code].keys(), code


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_alert_and_report_texts_for_the_web_name_no_command(lang: str) -> None:
    failing = TokenHealth(TOKEN, None, State.ERROR, "token_rejected", NOW, ())
    web_alert = build_alert([failing], lang, Door.WEB)
    cli_alert = build_alert([failing], lang, Door.CLI)
    assert web_alert is not None and cli_alert is not None
    assert not SHELL.search(web_alert["text"])
    assert "adesync tokens list" in cli_alert["text"]
    for section in ("alert", "report", "notify"):
        for key, text in catalogue(lang)[section].items():
            if isinstance(text, str) and not key.endswith("_web"):
                assert not SHELL.search(message(lang, section, key, door=Door.WEB)), key


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_consoles_help_page_names_no_command(lang: str) -> None:
    for item in help_entries(lang, door=Door.WEB):
        for text in (item["cause"], item["who"], *item["remediation"]):
            assert not SHELL.search(text), f"{item['code']}: {text}"
    cli = {item["code"]: item for item in help_entries(lang)}
    assert any("adesync tokens renew" in step for step in cli["token_rejected"]["remediation"])


def test_the_web_names_the_consoles_buttons() -> None:
    rule = next(r for r in RULES if r.code == "token_rejected")
    english = rendered(rule, None, "en", Door.WEB)["remediation"]
    chinese = rendered(rule, None, "zh-CN", Door.WEB)["remediation"]
    assert 'under "Renew: upload the new token (.p7m)"' in english[0]
    assert "“续订：上传新令牌 (.p7m)”" in chinese[0]
    assert "ask your operator" in english[2] and "请先让运维人员" in chinese[2]
    cli = rendered(rule, None, "en", Door.CLI)["remediation"]
    assert "`adesync tokens renew north --p7m FILE`" in cli[0]
