from __future__ import annotations

from typing import Any

import pytest

from adesync.sync.profiles import ProfileInvalid, parse_profile_file, validate_profile

GOOD: dict[str, Any] = {"profile_name": "Staff", "url": "https://mdm.example.com/enroll"}


def test_a_minimal_profile_is_valid() -> None:
    assert validate_profile(dict(GOOD)) == GOOD


@pytest.mark.parametrize(
    ("change", "field", "apple_code"),
    [
        ({"profile_name": ""}, "profile_name", "CONFIG_NAME_REQUIRED"),
        ({"profile_name": "x" * 126}, "profile_name", "CONFIG_NAME_INVALID"),
        ({"url": None}, "url", "CONFIG_URL_REQUIRED"),
        ({"url": "ftp://x"}, "url", "CONFIG_URL_INVALID"),
        ({"url": "https://x/" + "a" * 2000}, "url", "CONFIG_URL_INVALID"),
        ({"support_phone_number": "1" * 51}, "support_phone_number", "SUPPORT_PHONE_INVALID"),
        ({"support_email_address": "a" * 251}, "support_email_address", "SUPPORT_EMAIL_INVALID"),
        ({"org_magic": "m" * 257}, "org_magic", "MAGIC_INVALID"),
        ({"department": "d" * 126}, "department", "DEPARTMENT_INVALID"),
        ({"is_mdm_removable": False, "is_supervised": False}, "is_mdm_removable", "FLAGS_INVALID"),
        ({"is_supervised": "yes"}, "is_supervised", "FLAGS_INVALID"),
        ({"language": "english"}, "language", "LOCALE_INVALID"),
        ({"region": "USA"}, "region", "LOCALE_INVALID"),
    ],
)
def test_each_field_limit_names_the_field_and_apples_code(
    change: dict[str, Any], field: str, apple_code: str
) -> None:
    with pytest.raises(ProfileInvalid) as caught:
        validate_profile(GOOD | change)
    assert caught.value.field == field
    assert caught.value.apple_code == apple_code
    assert field in caught.value.message


def test_a_file_that_is_not_json_is_one_clear_error() -> None:
    with pytest.raises(ProfileInvalid, match="not valid JSON"):
        parse_profile_file("{profile_name: nope")
