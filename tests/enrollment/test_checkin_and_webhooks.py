"""Decoding real check-in plists and parsing NanoMDM/MicroMDM webhook events (no database)."""

from __future__ import annotations

import base64
import json
import plistlib

import pytest

from adesync.enrollment import EventKind, EventSource, InvalidEnrollmentData, decode_checkin
from adesync.enrollment.webhooks import parse_webhook
from tests.enrollment.helpers import (
    FIXTURES,
    IMAC_SERIAL,
    IMAC_UDID,
    IPAD_SERIAL,
    IPAD_UDID,
    fixture_event,
    plist,
    webhook_body,
)


@pytest.mark.parametrize(
    ("name", "serial", "udid"),
    [
        ("Authenticate.1.plist", IPAD_SERIAL, IPAD_UDID),
        ("Authenticate.2.plist", IMAC_SERIAL, IMAC_UDID),
    ],
)
def test_authenticate_gives_serial_and_udid(name: str, serial: str, udid: str) -> None:
    checkin = decode_checkin(plist(name))
    assert (checkin.message_type, checkin.serial_number, checkin.device_id) == (
        "Authenticate",
        serial,
        udid,
    )
    assert not checkin.user_channel


@pytest.mark.parametrize(
    ("name", "udid"), [("TokenUpdate.1.plist", IPAD_UDID), ("TokenUpdate.2.plist", IMAC_UDID)]
)
def test_token_update_has_only_the_udid(name: str, udid: str) -> None:
    checkin = decode_checkin(plist(name))
    assert (checkin.message_type, checkin.serial_number, checkin.device_id) == (
        "TokenUpdate",
        None,
        udid,
    )


def test_nanomdms_own_webhook_event_parses() -> None:
    body = (FIXTURES / "nanomdm-webhook-Authenticate.2.json").read_bytes()
    message = parse_webhook(body, EventSource.NANOMDM)
    assert message.kind is EventKind.AUTHENTICATED
    assert message.udid == IMAC_UDID
    assert message.checkin is not None and message.checkin.serial_number == IMAC_SERIAL
    # NanoMDM's test event carries Go's zero time: adesync uses the time it arrives instead.
    assert message.created_at is None


def test_the_same_event_has_the_same_key_and_another_one_another() -> None:
    first = parse_webhook(fixture_event("TokenUpdate.1.plist", tally=1), EventSource.NANOMDM)
    again = parse_webhook(fixture_event("TokenUpdate.1.plist", tally=1), EventSource.NANOMDM)
    later = parse_webhook(
        fixture_event("TokenUpdate.1.plist", created_at="2026-11-21T10:00:00Z"),
        EventSource.NANOMDM,
    )
    assert first.key == again.key != later.key
    assert first.token_update_tally == 1 and later.token_update_tally is None


def test_topics_that_say_nothing_about_enrollment_are_ignored_without_decoding() -> None:
    body = json.dumps({"topic": "mdm.Connect", "acknowledge_event": {"raw_payload": "!!"}})
    message = parse_webhook(body.encode(), EventSource.MICROMDM)
    assert (message.kind, message.checkin) == (None, None)


def _raw(payload: str, topic: str = "mdm.Authenticate") -> bytes:
    return json.dumps(
        {
            "topic": topic,
            "created_at": "2026-11-20T10:00:00Z",
            "checkin_event": {"raw_payload": payload},
        }
    ).encode()


NO_SERIAL = plistlib.dumps({"MessageType": "Authenticate", "UDID": "ABC", "Topic": "x"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "The webhook body is not JSON."),
        (b"[1, 2]", "The webhook body is not a JSON object."),
        (b'{"created_at": "2026-11-20T10:00:00Z"}', "The webhook event has no topic."),
        (
            b'{"topic": "mdm.Authenticate"}',
            "The mdm.Authenticate event has no checkin_event object.",
        ),
        (_raw("this is not base64!"), "checkin_event.raw_payload is not valid base64."),
        (
            _raw(base64.b64encode(b"<html>hello</html>").decode()),
            "checkin_event.raw_payload is not a property list.",
        ),
        (
            _raw(base64.b64encode(plistlib.dumps(["a"])).decode()),
            "checkin_event.raw_payload is a property list but not a dictionary.",
        ),
        (
            _raw(base64.b64encode(NO_SERIAL).decode()),
            "The Authenticate message has no SerialNumber, so adesync cannot tell which device "
            "it is.",
        ),
        (
            _raw(base64.b64encode(plist("TokenUpdate.2.plist")).decode()),
            "The mdm.Authenticate event carries a TokenUpdate message, not Authenticate.",
        ),
        (
            json.dumps(
                webhook_body(
                    plist("Authenticate.1.plist"), "mdm.Authenticate", created_at="yesterday"
                )
            ).encode(),
            "created_at 'yesterday' is not a date and time.",
        ),
        (
            json.dumps(
                webhook_body(plist("TokenUpdate.1.plist"), "mdm.TokenUpdate", tally=-1)
            ).encode(),
            "token_update_tally must be a whole number.",
        ),
    ],
)
def test_bad_webhook_bodies_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(InvalidEnrollmentData) as caught:
        parse_webhook(body, EventSource.NANOMDM)
    assert caught.value.message == message
    assert caught.value.http_status == 422


def test_a_bad_serial_number_is_refused() -> None:
    raw = plistlib.dumps(
        {"MessageType": "Authenticate", "UDID": "ABC", "SerialNumber": "C02 <script>"}
    )
    with pytest.raises(InvalidEnrollmentData, match="is not a serial number"):
        decode_checkin(raw)


def test_user_channel_messages_are_marked() -> None:
    raw = plistlib.dumps(
        {"MessageType": "TokenUpdate", "UDID": IMAC_UDID, "UserID": "1A2B", "Topic": "x"}
    )
    assert decode_checkin(raw).user_channel


def test_serials_are_read_in_apples_upper_case() -> None:
    raw = plistlib.dumps({"MessageType": "Authenticate", "UDID": "u", "SerialNumber": " c02x1 "})
    assert decode_checkin(raw).serial_number == "C02X1"


def test_binary_plists_decode_too() -> None:
    document = plistlib.loads(plist("Authenticate.2.plist"))
    raw = plistlib.dumps(document, fmt=plistlib.FMT_BINARY)
    assert decode_checkin(raw).serial_number == IMAC_SERIAL
