"""Apple's limits on enrollment-profile fields, so a profile is checked before Apple sees it
and Apple's field codes (``CONFIG_URL_INVALID``, ``*_REQUIRED``) can be explained by field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FIELD_LIMITS", "ProfileProblem", "problem_for_apple_code", "validate_profile"]


@dataclass(frozen=True)
class ProfileProblem:
    """What is wrong with one field: Apple's ``code``, the profile ``field`` and ``kind``
    (``length``: longer than ``limit`` characters; ``required``; ``flags``; ``locale``;
    ``other``)."""

    code: str
    field: str
    kind: str
    limit: int | None = None


# Apple's code → (profile field, most characters allowed); from Apple's define-profile page.
FIELD_LIMITS: dict[str, tuple[str, int]] = {
    "CONFIG_NAME_INVALID": ("profile_name", 125),
    "CONFIG_URL_INVALID": ("url", 2000),
    "SUPPORT_PHONE_INVALID": ("support_phone_number", 50),
    "SUPPORT_EMAIL_INVALID": ("support_email_address", 250),
    "DEPARTMENT_INVALID": ("department", 125),
    "MAGIC_INVALID": ("org_magic", 256),
}
_REQUIRED_FIELDS = {
    "CONFIG_NAME_REQUIRED": "profile_name",
    "CONFIG_URL_REQUIRED": "url",
    "SUPPORT_PHONE_REQUIRED": "support_phone_number",
    "SUPPORT_EMAIL_REQUIRED": "support_email_address",
    "DEPARTMENT_REQUIRED": "department",
}
_APPLE_CODE = re.compile(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_(?:INVALID|REQUIRED))\b")


def problem_for_apple_code(text: str) -> ProfileProblem:
    """Explain the first profile field code found in ``text`` (Apple's error body)."""
    match = _APPLE_CODE.search(text.upper())
    code = match.group(1) if match else ""
    if code in FIELD_LIMITS:
        field, limit = FIELD_LIMITS[code]
        return ProfileProblem(code, field, "length", limit)
    if code == "FLAGS_INVALID":
        return ProfileProblem(code, "is_mdm_removable", "flags")
    if code == "LOCALE_INVALID":
        return ProfileProblem(code, "language", "locale")
    if code.endswith("_REQUIRED"):
        field = _REQUIRED_FIELDS.get(code, code.removesuffix("_REQUIRED").lower())
        return ProfileProblem(code, field, "required")
    return ProfileProblem(code or "UNKNOWN", "", "other")


def validate_profile(profile: Mapping[str, Any]) -> list[ProfileProblem]:
    """Every problem Apple would report for ``profile`` (a define-profile JSON object) that
    can be seen without Apple: required fields, field lengths and the supervision flag."""
    problems = []
    for code, field in (("CONFIG_NAME_REQUIRED", "profile_name"), ("CONFIG_URL_REQUIRED", "url")):
        if not str(profile.get(field) or "").strip():
            problems.append(ProfileProblem(code, field, "required"))
    for code, (field, limit) in FIELD_LIMITS.items():
        value = profile.get(field)
        if isinstance(value, str) and len(value) > limit:
            problems.append(ProfileProblem(code, field, "length", limit))
    # Only a supervised device can be kept from removing its MDM profile.
    if profile.get("is_mdm_removable") is False and profile.get("is_supervised") is not True:
        problems.append(ProfileProblem("FLAGS_INVALID", "is_mdm_removable", "flags"))
    return problems
