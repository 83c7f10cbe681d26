"""The listings' JSON writer gives what ``jsonable`` and the json module would."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from adesync.web.api.common import json_body, jsonable


def test_json_body_matches_jsonable() -> None:
    document = {
        "items": [
            {
                "name": "tök-1 ✓",
                "expires_at": datetime(2030, 5, 1, 12, 13, 14, 999_999, tzinfo=UTC),
                "last_sync_at": None,
                "device_count": 500,
                "flags": [True, False],
            }
        ],
        "next": None,
        7: "int key",
    }
    expected = json.dumps(jsonable(document), ensure_ascii=False, separators=(",", ":"))
    assert json_body(document) == expected.encode("utf-8")
    assert b'"expires_at":"2030-05-01T12:13:14Z"' in json_body(document)


def test_json_body_refuses_what_is_not_json() -> None:
    with pytest.raises(TypeError):
        json_body({"a": {1, 2}})
