"""Typed shapes of what Apple's ADE service sends and accepts.

Every model keeps fields it does not know (``extra="allow"``): Apple adds keys with new protocol
versions and adesync must not drop them. Timestamps are aware UTC ``datetime``s. Models are
validated straight from response bytes (``model_validate_json``); a page of 1000 devices must stay
cheap, so validators here are few and small.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MAX_PAGE_SIZE",
    "AccountDetail",
    "AccountURL",
    "ActivationLockResponse",
    "AssignProfileResponse",
    "DefineProfileResponse",
    "Device",
    "DeviceDetailsResponse",
    "DevicePage",
    "DeviceStatusResponse",
    "PageLimit",
    "Profile",
]

# Apple documents 1000 as the largest page; some accounts advertise 5000, which is not documented.
MAX_PAGE_SIZE = 1000


def _utc(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset is None:
        return value.replace(tzinfo=UTC)
    if offset:
        return value.astimezone(UTC)
    return value


UTCDateTime = Annotated[datetime, AfterValidator(_utc)]


class AppleModel(BaseModel):
    """Base of every Apple shape: unknown fields kept, names exactly as Apple spells them."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Device(AppleModel):
    """One device record from fetch, sync or device details; only ``serial_number`` is certain."""

    serial_number: str
    model: str | None = None
    description: str | None = None
    color: str | None = None
    asset_tag: str | None = None
    profile_status: str | None = None
    profile_uuid: str | None = None
    profile_assign_time: UTCDateTime | None = None
    profile_push_time: UTCDateTime | None = None
    device_assigned_date: UTCDateTime | None = None
    device_assigned_by: str | None = None
    os: str | None = None
    device_family: str | None = None
    op_type: str | None = None
    op_date: UTCDateTime | None = None
    mdm_migration_deadline: UTCDateTime | None = None
    response_status: str | None = None


class DevicePage(AppleModel):
    """One page of ``/server/devices`` or ``/devices/sync``.

    ``cursor`` goes into the next call; ``more_to_follow`` (Apple's sample sends it as the string
    ``"false"``; both forms are accepted) says whether to call again at once.
    """

    devices: list[Device] = Field(default_factory=list)
    cursor: str
    more_to_follow: bool = False
    fetched_until: UTCDateTime | None = None


class PageLimit(AppleModel):
    default: int | None = None
    maximum: int | None = None


class AccountURL(AppleModel):
    """One endpoint the account advertises, with its methods and page limits if any."""

    uri: str
    http_method: list[str] = Field(default_factory=list)
    limit: PageLimit | None = None


class AccountDetail(AppleModel):
    """``GET /account``: the MDM server this token belongs to and its organisation."""

    server_name: str | None = None
    server_uuid: str | None = None
    admin_id: str | None = None
    facilitator_id: str | None = None
    org_name: str | None = None
    org_email: str | None = None
    org_phone: str | None = None
    org_address: str | None = None
    org_type: str | None = None
    org_version: str | None = None
    org_id: str | None = None
    org_id_hash: str | None = None
    urls: list[AccountURL] = Field(default_factory=list)

    @property
    def admin(self) -> str | None:
        """The Apple Account that generated the token (``admin_id``, else ``facilitator_id``)."""
        return self.admin_id or self.facilitator_id

    def page_size(self, uri: str) -> int:
        """The page size to ask ``uri`` for: the advertised maximum, capped at 1000.

        An account that advertises nothing for ``uri`` gets 1000, Apple's documented maximum.
        """
        for url in self.urls:
            if url.uri == uri and url.limit is not None:
                advertised = url.limit.maximum or url.limit.default
                if advertised is not None and advertised > 0:
                    return min(advertised, MAX_PAGE_SIZE)
        return MAX_PAGE_SIZE


class DeviceDetailsResponse(AppleModel):
    """``POST /devices``: one record per serial asked for.

    A serial Apple cannot see comes back with only ``response_status`` (e.g. ``NOT_FOUND``); its
    ``serial_number`` is filled in from the key so every record is a :class:`Device`.
    """

    devices: dict[str, Device] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _serials_from_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            devices = data.get("devices")
            if isinstance(devices, dict):
                for serial, record in devices.items():
                    if isinstance(record, dict) and "serial_number" not in record:
                        record["serial_number"] = serial
        return data


class DeviceStatusResponse(AppleModel):
    """``POST /devices/disown`` and ``DELETE /profile/devices``: serial → ``SUCCESS`` /
    ``NOT_ACCESSIBLE`` / ``FAILED``."""

    devices: dict[str, str] = Field(default_factory=dict)


class Profile(AppleModel):
    """An ADE enrollment profile as defined with ``POST /profile`` and read with ``GET``."""

    profile_name: str
    url: str
    profile_uuid: str | None = None
    configuration_web_url: str | None = None
    allow_pairing: bool | None = None
    is_supervised: bool | None = None
    is_multi_user: bool | None = None
    is_mandatory: bool | None = None
    await_device_configured: bool | None = None
    is_mdm_removable: bool | None = None
    auto_advance_setup: bool | None = None
    support_phone_number: str | None = None
    support_email_address: str | None = None
    org_magic: str | None = None
    department: str | None = None
    anchor_certs: list[str] | None = None
    supervising_host_certs: list[str] | None = None
    skip_setup_items: list[str] | None = None
    language: str | None = None
    region: str | None = None
    do_not_use_profile_from_backup: bool | None = None
    is_return_to_service: bool | None = None
    devices: list[str] | None = None


class DefineProfileResponse(AppleModel):
    """``POST /profile``: the new profile's UUID and, if devices were sent, their status."""

    profile_uuid: str
    devices: dict[str, str] = Field(default_factory=dict)


class AssignProfileResponse(AppleModel):
    """``/profile/devices`` assignment: serial → ``SUCCESS`` / ``NOT_ACCESSIBLE`` / ``FAILED`` /
    ``THROTTLED``; ``retry_after_seconds`` is how long to wait before retrying throttled serials."""

    profile_uuid: str | None = None
    devices: dict[str, str] = Field(default_factory=dict)
    retry_after_seconds: int | None = None


class ActivationLockResponse(AppleModel):
    """``POST /device/activationlock``: ``response_status`` is ``SUCCESS``, ``NOT_ACCESSIBLE``,
    ``ORG_NOT_SUPPORTED``, ``DEVICE_NOT_SUPPORTED``, ``DEVICE_ALREADY_LOCKED`` or ``FAILED``."""

    serial_number: str | None = None
    response_status: str | None = None
