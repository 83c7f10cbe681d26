from __future__ import annotations

from adesync.web.i18n import pick_language
from adesync.web.ratelimit import LoginLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_for_a_name_block_it_until_the_window_passes() -> None:
    clock = Clock()
    limiter = LoginLimiter(per_name=5, per_address=20, window=900, clock=clock)
    for _ in range(5):
        assert limiter.retry_after("10.0.0.1", "Alice") == 0
        limiter.failed("10.0.0.1", "alice")
    assert limiter.retry_after("10.0.0.1", "ALICE") == 900
    assert limiter.retry_after("10.0.0.1", "bob") == 0  # other names from there still may try
    assert limiter.retry_after("10.0.0.2", "alice") == 0  # and the name from elsewhere
    clock.now += 600
    assert limiter.retry_after("10.0.0.1", "alice") == 300
    clock.now += 300
    assert limiter.retry_after("10.0.0.1", "alice") == 0


def test_an_address_trying_many_names_is_blocked_too() -> None:
    clock = Clock()
    limiter = LoginLimiter(per_name=5, per_address=20, window=900, clock=clock)
    for i in range(20):
        limiter.failed("10.0.0.9", f"user{i}")
    assert limiter.retry_after("10.0.0.9", "someone-new") > 0


def test_a_success_forgets_the_names_failures() -> None:
    limiter = LoginLimiter(per_name=2, clock=Clock())
    limiter.failed("a", "alice")
    limiter.succeeded("a", "alice")
    limiter.failed("a", "alice")
    assert limiter.retry_after("a", "alice") == 0


def test_language_choice() -> None:
    assert pick_language("zh-CN", "en", None) == "zh-CN"
    assert pick_language("fr", "en", "zh-TW,zh;q=0.9") == "zh-CN"
    assert pick_language(None, "zh-CN", "en-US") == "zh-CN"
    assert pick_language(None, "en", "en-GB") == "en"
