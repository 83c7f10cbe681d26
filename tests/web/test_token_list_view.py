"""The token list's rows: rendered once per set of shown values, again when any changes
(device count, state, days left, language), escaped, with the chart's bars beside them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adesync.web.charts import ExpiryBar
from adesync.web.console.render import TEMPLATES
from adesync.web.console.views import token_list
from adesync.web.i18n import load_catalogues

CATALOGUES = load_catalogues()
TEMPLATE = TEMPLATES.get_template("token_row.html")


def _item(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": "acme-hq",
        "status": "installed",
        "state": "healthy",
        "state_reason": None,
        "token_type": "abm",
        "expires_at": datetime.now(UTC) + timedelta(days=40, hours=1),
        "org_name": "Acme <Corp>",
        "last_successful_sync_at": datetime(2026, 12, 1, 10, 11, 12, tzinfo=UTC),
        "default_profile_uuid": "0123456789ABCDEF",
        "device_count": 25,
    }
    return item | changes


def test_same_values_reuse_the_rendered_row_and_any_change_renders_again() -> None:
    en = CATALOGUES.translator("en")
    item = _item()
    (first,), bars = token_list([item], en, TEMPLATE)
    (again,), _ = token_list([dict(item)], en, TEMPLATE)
    assert again is first
    assert bars == [ExpiryBar("acme-hq", 41)]
    assert "41 days left" in first and "Acme &lt;Corp&gt;" in first and "<Corp>" not in first
    assert '<time datetime="2026-12-01T10:11:12+00:00">2026-12-01 10:11 UTC</time>' in first
    assert "<code>0123456789AB</code>" in first

    (counted,), _ = token_list([_item(device_count=26)], en, TEMPLATE)
    assert '<td class="num">26</td>' in counted
    (failing,), _ = token_list([_item(state="error", state_reason="token_expired")], en, TEMPLATE)
    assert 'class="badge error"' in failing and 'class="row-error"' in failing
    (later,), _ = token_list(
        [_item(expires_at=datetime.now(UTC) + timedelta(days=3, hours=1))], en, TEMPLATE
    )
    assert "4 days left" in later and 'class="days warning"' in later
    (chinese,), _ = token_list([item], CATALOGUES.translator("zh-CN"), TEMPLATE)
    assert chinese != first


def test_waiting_and_expired_tokens() -> None:
    en = CATALOGUES.translator("en")
    waiting = _item(name="new", status="waiting_for_p7m", expires_at=None)
    expired = _item(name="old", expires_at=datetime.now(UTC) - timedelta(days=2, hours=1))
    (waiting_row, expired_row), bars = token_list([waiting, expired], en, TEMPLATE)
    assert 'class="badge unknown"' in waiting_row and 'class="days muted"' in waiting_row
    assert 'class="days error"' in expired_row
    assert bars == [ExpiryBar("old", -2)]
