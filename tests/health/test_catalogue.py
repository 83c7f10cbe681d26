"""Catalogue completeness: every code has every message in every language, with the same
placeholders, and its section in the findings documentation."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import pytest

from adesync.health import LANGUAGES, RULES, Finding, TokenLabel, render_finding
from adesync.health.help import findings_markdown, help_entries
from adesync.health.messages import TOKEN_PARAMS, catalogue

TEXT_KEYS = ("name", "cause", "title", "detail", "remediation", "actor")
OVERRIDABLE = ("title", "detail", "remediation", "actor")
REPO = Path(__file__).resolve().parents[2]


def placeholders(text: str | list[str]) -> set[str]:
    texts = text if isinstance(text, list) else [text]
    return {
        name
        for item in texts
        for _, name, _, _ in string.Formatter().parse(item)
        if name is not None
    }


def entry(lang: str, code: str) -> dict[str, Any]:
    codes: dict[str, Any] = catalogue(lang)["codes"]
    return codes[code]  # type: ignore[no-any-return]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_every_code_has_every_message(lang: str, rule: Any) -> None:
    messages = entry(lang, rule.code)
    for key in TEXT_KEYS:
        assert messages.get(key), f"{lang}: {rule.code} has no {key}"
    assert isinstance(messages["remediation"], list)
    for variant in rule.variants:
        assert any(f"{key}_{variant}" in messages for key in OVERRIDABLE), (
            f"{lang}: {rule.code} has no wording for variant {variant}"
        )
    for key in messages:
        base, _, variant = key.partition("_")
        variant = variant.removeprefix("web").removeprefix("_")  # <key>_web[_<variant>]
        if base in (*OVERRIDABLE, "cause") and variant:
            assert variant in rule.variants, f"{lang}: {rule.code}.{key} is no declared variant"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_languages_use_the_same_keys_and_placeholders(rule: Any) -> None:
    english = entry("en", rule.code)
    for lang in LANGUAGES[1:]:
        other = entry(lang, rule.code)
        assert other.keys() == english.keys()
        for key, text in english.items():
            assert placeholders(other[key]) == placeholders(text), f"{lang}: {rule.code}.{key}"
            if key.startswith("remediation"):
                assert len(other[key]) == len(text), f"{lang}: {rule.code}.{key} step count"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_placeholders_are_parameters_the_rule_provides(rule: Any) -> None:
    token_params = set() if rule.installation else set(TOKEN_PARAMS)
    allowed = set(rule.params) | token_params | {"count"}
    for key, text in entry("en", rule.code).items():
        used = placeholders(text)
        if key.startswith(("name", "cause")):
            assert not used, f"{rule.code}.{key} is generic and takes no placeholder"
        elif key.startswith(("remediation", "actor")):
            # Steps are also shown on the help page, filled with generic token words only.
            assert used <= token_params, f"{rule.code}.{key}: {used - token_params}"
        else:
            assert used <= allowed, f"{rule.code}.{key}: {used - allowed}"


def test_no_message_without_a_rule() -> None:
    codes = {rule.code for rule in RULES}
    for lang in LANGUAGES:
        assert set(catalogue(lang)["codes"]) == codes


@pytest.mark.parametrize("section", ["alert", "report", "notify", "states", "severities"])
def test_other_sections_match_across_languages(section: str) -> None:
    english = catalogue("en")[section]
    for lang in LANGUAGES[1:]:
        other = catalogue(lang)[section]
        assert other.keys() == english.keys()
        for key, text in english.items():
            assert placeholders(other[key]) == placeholders(text), f"{lang}: {section}.{key}"


def sample(rule: Any, variant: str | None) -> Finding:
    data = {name: "2030-01-02T03:04:05Z" if name.endswith("_at") else 7 for name in rule.params}
    return Finding(
        rule.code, rule.severity, None if rule.installation else 1, 3, ("S1",), data, variant
    )


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_every_wording_renders(lang: str, rule: Any) -> None:
    token = None if rule.installation else TokenLabel(1, "lab", "Example School", "MDM", "asm")
    for variant in (None, *rule.variants):
        document = render_finding(sample(rule, variant), token, lang, docs_url="https://d/x")
        for text in (document["title"], document["detail"], *document["remediation"]):
            assert "{" not in text and "—" not in text, text
        assert document["doc_url"] == f"https://d/x#{rule.code}"


def test_timestamps_and_numbers_are_worded() -> None:
    rule = next(r for r in RULES if r.code == "token_expiring")
    finding = Finding(
        "token_expiring",
        rule.severity,
        1,
        data={"expires_at": "2030-01-02T03:04:05Z", "days_left": 12},
    )
    token = TokenLabel(1, "lab", None, None, "abm")
    document = render_finding(finding, token, "en")
    assert document["title"] == "Token expires in 12 days"
    assert "2030-01-02 03:04 UTC" in document["detail"]
    assert "lab (lab)" in document["detail"]  # no organisation known yet: the name stands in
    assert document["doc_url"] == "/help/findings#token_expiring"
    chinese = render_finding(finding, token, "zh-CN")
    assert chinese["title"] == "令牌将在 12 天后过期"
    assert "Apple 商务管理" in chinese["detail"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_help_entries_cover_every_code(lang: str) -> None:
    entries = help_entries(lang)
    assert [e["code"] for e in entries] == [r.code for r in RULES]
    for item in entries:
        assert item["title"] and item["cause"] and item["who"] and item["remediation"]
        assert all("{" not in step for step in item["remediation"])


def test_findings_document_has_one_section_per_code() -> None:
    text = findings_markdown()
    anchors = re.findall(r'<a id="([a-z_]+)"></a>', text)
    assert anchors == [rule.code for rule in RULES]
    for rule in RULES:
        section = text.split(f'<a id="{rule.code}"></a>', 1)[1].split("<a id=", 1)[0]
        assert "https://" in section, f"{rule.code} links no page"


def test_docs_findings_is_the_packaged_file() -> None:
    docs = REPO / "docs" / "findings.md"
    assert docs.read_text(encoding="utf-8") == findings_markdown()
    assert docs.resolve() == (REPO / "src" / "adesync" / "health" / "findings.md").resolve()


def test_the_lifecycle_table_names_every_finding_once() -> None:
    """findings.md's table of what raises and clears each finding covers every code once."""
    text = findings_markdown()
    table = text[text.index("| finding | raised by |") :].split("\n\n", 1)[0]
    named = [
        code for row in table.splitlines()[2:] for code in re.findall(r"`(\w+)`", row.split("|")[1])
    ]
    assert sorted(named) == sorted(rule.code for rule in RULES)
