"""Apple's validation of an ADE enrollment profile (``POST /profile``), code by code."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from adesync.simulator.answers import ServiceError

__all__ = ["validate_profile"]

_STRINGS = (
    "profile_name",
    "url",
    "configuration_web_url",
    "support_phone_number",
    "support_email_address",
    "org_magic",
    "department",
    "language",
    "region",
)
_BOOLEANS = (
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
_STRING_LISTS = ("anchor_certs", "supervising_host_certs", "skip_setup_items")
# Keys that protocol version 2 introduced; an older client's profile does not carry them.
_VERSION_2 = (
    "await_device_configured",
    "auto_advance_setup",
    "support_email_address",
    "is_multi_user",
)
_LIMITS = (
    ("support_phone_number", 50, "SUPPORT_PHONE_INVALID"),
    ("support_email_address", 250, "SUPPORT_EMAIL_INVALID"),
    ("org_magic", 256, "MAGIC_INVALID"),
    ("department", 125, "DEPARTMENT_INVALID"),
)


def _valid_url(value: str) -> bool:
    if not value or len(value) > 2000 or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _bad_body() -> ServiceError:
    return ServiceError(400, "MALFORMED_REQUEST_BODY")


def validate_profile(body: Any, version: int) -> tuple[dict[str, Any], list[str] | None]:
    """The profile to store and the serials to assign with it; ``ServiceError`` as Apple answers.

    Unknown keys are dropped; keys introduced by protocol version 2 are dropped for older
    clients.
    """
    if not isinstance(body, dict):
        raise _bad_body()
    profile: dict[str, Any] = {}
    for key in _STRINGS:
        if key in body and body[key] is not None:
            if not isinstance(body[key], str):
                raise _bad_body()
            profile[key] = body[key]
    for key in _BOOLEANS:
        if key in body and body[key] is not None:
            if not isinstance(body[key], bool):
                raise _bad_body()
            profile[key] = body[key]
    for key in _STRING_LISTS:
        if key in body and body[key] is not None:
            value = body[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _bad_body()
            profile[key] = list(value)
    devices = body.get("devices")
    if devices is not None and (
        not isinstance(devices, list) or not all(isinstance(v, str) for v in devices)
    ):
        raise _bad_body()
    if version < 2:
        for key in _VERSION_2:
            profile.pop(key, None)

    if "profile_name" not in profile:
        raise ServiceError(400, "CONFIG_NAME_REQUIRED")
    if not 1 <= len(profile["profile_name"]) <= 125:
        raise ServiceError(400, "CONFIG_NAME_INVALID")
    if "url" not in profile:
        raise ServiceError(400, "CONFIG_URL_REQUIRED")
    if not _valid_url(profile["url"]):
        raise ServiceError(400, "CONFIG_URL_INVALID")
    if "configuration_web_url" in profile and not _valid_url(profile["configuration_web_url"]):
        raise ServiceError(400, "CONFIG_URL_INVALID")
    for key, limit, code in _LIMITS:
        if key in profile and len(profile[key]) > limit:
            raise ServiceError(400, code)
    if profile.get("is_mdm_removable") is False and profile.get("is_supervised") is not True:
        raise ServiceError(400, "FLAGS_INVALID")
    language, region = profile.get("language"), profile.get("region")
    if language is not None and not (2 <= len(language) <= 3 and language.isalpha()):
        raise ServiceError(400, "LOCALE_INVALID")
    if region is not None and not (len(region) == 2 and region.isalpha()):
        raise ServiceError(400, "LOCALE_INVALID")
    return profile, devices
