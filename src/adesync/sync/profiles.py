"""Enrollment profiles: local validation with Apple's field limits (before Apple is called).

The profile actions (define, default, assign, remove) are :mod:`adesync.services.profiles`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from adesync.errors import AdesyncError
from adesync.text import storable_document

# Apple's limits (define-profile documentation): field → (min, max, Apple's error code).
TEXT_LIMITS: dict[str, tuple[int, int, str]] = {
    "profile_name": (1, 125, "CONFIG_NAME_INVALID"),
    "url": (1, 2000, "CONFIG_URL_INVALID"),
    "configuration_web_url": (0, 2000, "CONFIG_URL_INVALID"),
    "support_phone_number": (0, 50, "SUPPORT_PHONE_INVALID"),
    "support_email_address": (0, 250, "SUPPORT_EMAIL_INVALID"),
    "org_magic": (0, 256, "MAGIC_INVALID"),
    "department": (0, 125, "DEPARTMENT_INVALID"),
}
REQUIRED = {"profile_name": "CONFIG_NAME_REQUIRED", "url": "CONFIG_URL_REQUIRED"}
BOOL_FIELDS = (
    "allow_pairing",
    "is_supervised",
    "is_multi_user",
    "is_mandatory",
    "await_device_configured",
    "is_mdm_removable",
    "auto_advance_setup",
    "do_not_use_profile_from_backup",
    "is_return_to_service",
)
LIST_FIELDS = ("anchor_certs", "supervising_host_certs", "skip_setup_items", "devices")


class ProfileInvalid(AdesyncError):
    """A profile field breaks Apple's rules; ``field`` and ``apple_code`` say which."""

    code = "profile_invalid"

    def __init__(self, message: str, *, field: str, apple_code: str) -> None:
        super().__init__(message)
        self.field = field
        self.apple_code = apple_code


def validate_profile(definition: Any) -> dict[str, Any]:
    """Check a profile against Apple's field limits before it is sent; returns it unchanged."""
    if not isinstance(definition, dict):
        raise ProfileInvalid(
            "A profile must be a JSON object of Apple's profile fields.",
            field="(profile)",
            apple_code="MALFORMED_REQUEST_BODY",
        )
    for name, value in definition.items():
        if not storable_document([name, value]):
            raise ProfileInvalid(
                f"The profile's {name} holds a NUL character or a lone surrogate, which cannot "
                "be stored.",
                field=name,
                apple_code="MALFORMED_REQUEST_BODY",
            )
    for name, apple_code in REQUIRED.items():
        value = definition.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ProfileInvalid(
                f"The profile has no {name}; Apple requires one ({apple_code}).",
                field=name,
                apple_code=apple_code,
            )
    for name, (low, high, apple_code) in TEXT_LIMITS.items():
        value = definition.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not low <= len(value) <= high:
            size = f"{len(value)} characters long" if isinstance(value, str) else "not text"
            raise ProfileInvalid(
                f"The profile's {name} is {size}; Apple allows {low} to {high} "
                f"characters ({apple_code}).",
                field=name,
                apple_code=apple_code,
            )
    for name in ("url", "configuration_web_url"):
        value = definition.get(name)
        if value and not _is_web_url(value):
            raise ProfileInvalid(
                f"The profile's {name} {value!r} is not an http(s) URL (CONFIG_URL_INVALID).",
                field=name,
                apple_code="CONFIG_URL_INVALID",
            )
    for name in BOOL_FIELDS:
        if name in definition and not isinstance(definition[name], bool):
            raise ProfileInvalid(
                f"The profile's {name} must be true or false (FLAGS_INVALID).",
                field=name,
                apple_code="FLAGS_INVALID",
            )
    for name in LIST_FIELDS:
        value = definition.get(name)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise ProfileInvalid(
                f"The profile's {name} must be a list of strings.",
                field=name,
                apple_code="MALFORMED_REQUEST_BODY",
            )
    if definition.get("is_mdm_removable") is False and definition.get("is_supervised") is False:
        raise ProfileInvalid(
            "The profile sets is_mdm_removable to false on an unsupervised device; Apple allows "
            "that only with is_supervised true (FLAGS_INVALID).",
            field="is_mdm_removable",
            apple_code="FLAGS_INVALID",
        )
    language, region = definition.get("language"), definition.get("region")
    if language is not None and (not isinstance(language, str) or not 2 <= len(language) <= 3):
        raise ProfileInvalid(
            "The profile's language must be an ISO 639 code of 2 or 3 letters (LOCALE_INVALID).",
            field="language",
            apple_code="LOCALE_INVALID",
        )
    if region is not None and (not isinstance(region, str) or len(region) != 2):
        raise ProfileInvalid(
            "The profile's region must be an ISO 3166 code of 2 letters (LOCALE_INVALID).",
            field="region",
            apple_code="LOCALE_INVALID",
        )
    return definition


def _is_web_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("https", "http") and bool(parts.netloc)


def parse_profile_file(text: str) -> dict[str, Any]:
    try:
        definition = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileInvalid(
            f"The profile file is not valid JSON (line {exc.lineno}, column {exc.colno}).",
            field="(profile)",
            apple_code="MALFORMED_REQUEST_BODY",
        ) from None
    return validate_profile(definition)
