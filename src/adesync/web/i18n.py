"""Console text in ``en`` and ``zh-CN``: one JSON message catalogue per language.

Keys are dotted names; values may hold ``{placeholders}``. A key missing from a language falls
back to English (a test keeps both files complete).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["LANGUAGES", "Catalogues", "Translator", "load_catalogues"]

LANGUAGES = ("en", "zh-CN")
LANGUAGE_NAMES = {"en": "English", "zh-CN": "简体中文"}


class Translator:
    """``t("key", name=...)`` in one language."""

    def __init__(self, lang: str, messages: dict[str, str], fallback: dict[str, str]) -> None:
        self.lang = lang
        self._messages = messages
        self._fallback = fallback

    def __call__(self, key: str, **values: Any) -> str:
        text = self._messages.get(key) or self._fallback.get(key) or key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self._messages or key in self._fallback


@dataclass(frozen=True)
class Catalogues:
    messages: dict[str, dict[str, str]]

    def translator(self, lang: str) -> Translator:
        lang = lang if lang in self.messages else "en"
        return Translator(lang, self.messages[lang], self.messages["en"])


def load_catalogues() -> Catalogues:
    folder = resources.files("adesync.web") / "messages"
    messages = {
        lang: json.loads((folder / f"{lang}.json").read_text(encoding="utf-8"))
        for lang in LANGUAGES
    }
    return Catalogues(messages=messages)


def pick_language(cookie: str | None, configured: str, accept_language: str | None) -> str:
    """The cookie's choice, else ADESYNC_LANG when set to a non-default, else the browser's."""
    if cookie in LANGUAGES:
        return cookie
    if configured != "en" and configured in LANGUAGES:
        return configured
    if accept_language and accept_language.strip().lower().startswith("zh"):
        return "zh-CN"
    return "en"
