"""Real-shaped Apple answers parse into the typed models, unknown fields kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from adesync.apple import (
    AccountDetail,
    ActivationLockResponse,
    AssignProfileResponse,
    DefineProfileResponse,
    Device,
    DeviceDetailsResponse,
    DevicePage,
    DeviceStatusResponse,
    Profile,
)
from tests.apple.fake_apple import fixture_bytes


def test_micromdm_recorded_account_advertises_5000_and_is_capped_at_1000() -> None:
    account = AccountDetail.model_validate_json(fixture_bytes("micromdm/account_response.json"))
    assert account.server_uuid == "6666ED66666666666666666666666666"
    assert account.admin == "apple-dep@acme.co"
    assert account.org_type == "org" and account.org_version == "v2"
    assert account.page_size("/server/devices") == 1000
    assert account.page_size("/devices/sync") == 1000
    assert account.page_size("/roster/class") == 1000  # nothing advertised: Apple's documented max
    profile_devices = next(u for u in account.urls if u.uri == "/profile/devices")
    assert profile_devices.http_method == ["DELETE", "POST", "PUT"]


def test_an_account_without_urls_pages_at_the_documented_maximum() -> None:
    account = AccountDetail.model_validate_json(
        b'{"server_name": "old", "facilitator_id": "a@b.c"}'
    )
    assert account.page_size("/server/devices") == 1000
    assert account.admin == "a@b.c"


def test_micromdm_recorded_fetch_and_sync_pages() -> None:
    page = DevicePage.model_validate_json(fixture_bytes("micromdm/device_response.json"))
    assert page.cursor.startswith("MDowOjE1")
    assert page.more_to_follow is False
    device = page.devices[0]
    assert device.serial_number == "C02T0HL0GGC0"
    assert device.profile_assign_time == datetime(2018, 9, 8, 16, 49, 9, tzinfo=UTC)
    assert device.op_type is None
    empty = DevicePage.model_validate_json(fixture_bytes("micromdm/empty_sync_response.json"))
    assert empty.devices == [] and empty.fetched_until is not None


def test_micromdm_recorded_device_details_and_profile() -> None:
    details = DeviceDetailsResponse.model_validate_json(
        fixture_bytes("micromdm/device_details_response.json")
    )
    assert details.devices["C02T0HL0GGC0"].response_status == "SUCCESS"
    profile = Profile.model_validate_json(fixture_bytes("micromdm/fetch_profile_response.json"))
    assert profile.profile_uuid == "C1F123098EB5074580041E69883004C3"
    assert profile.await_device_configured is True


def test_more_to_follow_accepts_apples_string_form() -> None:
    page = DevicePage.model_validate_json(fixture_bytes("fetch_page_last.json"))
    assert page.more_to_follow is False
    assert DevicePage.model_validate_json(
        b'{"cursor": "c", "more_to_follow": "true"}'
    ).more_to_follow


def test_a_sync_page_keeps_op_types_and_a_deleted_record_has_no_profile_fields() -> None:
    page = DevicePage.model_validate_json(fixture_bytes("sync_page.json"))
    deleted = page.devices[2]
    assert deleted.op_type == "deleted"
    assert deleted.op_date == datetime(2013, 11, 14, 7, 45, tzinfo=UTC)
    assert deleted.profile_status is None and deleted.profile_uuid is None


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2018-09-08T16:49:09Z", datetime(2018, 9, 8, 16, 49, 9, tzinfo=UTC)),
        ("2018-09-08T18:49:09+02:00", datetime(2018, 9, 8, 16, 49, 9, tzinfo=UTC)),
        ("2018-09-08T16:49:09", datetime(2018, 9, 8, 16, 49, 9, tzinfo=UTC)),
    ],
)
def test_timestamps_are_aware_utc_whatever_the_offset(stamp: str, expected: datetime) -> None:
    device = Device.model_validate_json(json.dumps({"serial_number": "S", "op_date": stamp}))
    assert device.op_date == expected
    assert device.op_date is not None and device.op_date.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_unknown_fields_are_kept() -> None:
    device = Device.model_validate_json(b'{"serial_number": "S", "new_apple_field": {"x": 1}}')
    assert device.model_extra == {"new_apple_field": {"x": 1}}
    assert device.model_dump()["new_apple_field"] == {"x": 1}
    account = AccountDetail.model_validate_json(b'{"urls": [], "org_flavour": "v9"}')
    assert account.model_extra == {"org_flavour": "v9"}


def test_a_device_needs_its_serial() -> None:
    with pytest.raises(ValueError, match="serial_number"):
        Device.model_validate_json(b'{"model": "IPAD"}')


def test_profile_and_status_answers() -> None:
    profile = Profile.model_validate_json(fixture_bytes("profile.json"))
    assert profile.is_mdm_removable is False and profile.language == "en"
    defined = DefineProfileResponse.model_validate_json(
        fixture_bytes("define_profile_response.json")
    )
    assert defined.devices == {"C8TJ500QF1MN": "SUCCESS", "B7CJ3RQ0FJMN": "NOT_ACCESSIBLE"}
    assigned = AssignProfileResponse.model_validate_json(
        fixture_bytes("assign_profile_response.json")
    )
    assert sorted(assigned.devices.values()) == ["FAILED", "NOT_ACCESSIBLE", "SUCCESS", "THROTTLED"]
    assert assigned.retry_after_seconds == 300
    status = DeviceStatusResponse.model_validate_json(fixture_bytes("device_status_response.json"))
    assert status.devices["DMQP3NB1FLMN"] == "FAILED"
    assert DeviceStatusResponse.model_validate_json(b"{}").devices == {}
    lock = ActivationLockResponse.model_validate_json(
        fixture_bytes("activation_lock_response.json")
    )
    assert lock.response_status == "SUCCESS"
