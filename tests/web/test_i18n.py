from __future__ import annotations

from adesync.web.i18n import pick_language


def test_language_choice() -> None:
    assert pick_language("zh-CN", "en", None) == "zh-CN"
    assert pick_language("fr", "en", "zh-TW,zh;q=0.9") == "zh-CN"
    assert pick_language(None, "zh-CN", "en-US") == "zh-CN"
    assert pick_language(None, "en", "en-GB") == "en"
