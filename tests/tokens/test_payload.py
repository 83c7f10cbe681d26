from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from adesync.tokens import DamagedTokenFile, TokenPayload, parse_token_message
from tests.fixtures.make_fixtures import VALID_A, message

EXPIRY = datetime(2099, 6, 30, 12, 0, tzinfo=UTC)


def test_apple_s_message_is_unwrapped_and_its_lines_joined() -> None:
    payload = parse_token_message(message(VALID_A))
    assert payload.consumer_key == VALID_A["consumer_key"]
    assert payload.consumer_secret == VALID_A["consumer_secret"]
    assert payload.access_token == VALID_A["access_token"]
    assert payload.access_secret == VALID_A["access_secret"]
    assert payload.access_token_expiry == EXPIRY


@pytest.mark.parametrize(
    "plaintext",
    [
        message(VALID_A).replace(b"\n", b"\r\n"),
        # No inner MIME headers.
        b"-----BEGIN MESSAGE-----\n" + json.dumps(VALID_A).encode() + b"\n-----END MESSAGE-----\n",
        # No markers at all (Apple's documentation example).
        b"Content-Type: text/plain;charset=UTF-8\n\n" + json.dumps(VALID_A).encode(),
        # Unknown fields are kept out of the way.
        message({**VALID_A, "org_name": "ignored"}),
    ],
)
def test_variants_of_the_inner_message_are_read(plaintext: bytes) -> None:
    assert parse_token_message(plaintext).consumer_key == VALID_A["consumer_key"]


def test_an_expiry_with_an_offset_or_none_becomes_utc() -> None:
    with_offset = parse_token_message(
        message({**VALID_A, "access_token_expiry": "2099-06-30T14:00:00+02:00"})
    )
    naive = parse_token_message(message({**VALID_A, "access_token_expiry": "2099-06-30T12:00:00"}))
    assert with_offset.access_token_expiry == EXPIRY == naive.access_token_expiry
    assert naive.access_token_expiry.tzinfo is UTC


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        b"\xff\xfe not utf-8",
        b"Content-Type: text/plain\nno blank line after the headers",
        message("[1, 2, 3]"),
        message("not json"),
        message({**VALID_A, "consumer_secret": ""}),
        message({**VALID_A, "access_token": 7}),  # type: ignore[dict-item]
        message({k: v for k, v in VALID_A.items() if k != "access_token_expiry"}),
        message({**VALID_A, "access_token_expiry": "2099-13-45T99:00:00Z"}),
        message("[" * 100_000),
    ],
)
def test_anything_else_is_a_damaged_token(plaintext: bytes) -> None:
    with pytest.raises(DamagedTokenFile) as caught:
        parse_token_message(plaintext)
    assert str(caught.value) == "This file is damaged or is not an ABM/ASM server token."


def test_secrets_stay_out_of_the_repr_but_survive_json() -> None:
    payload = TokenPayload.from_mapping(VALID_A)
    for name in ("consumer_secret", "access_token", "access_secret"):
        assert VALID_A[name] not in repr(payload)
    assert TokenPayload.from_json(payload.to_json()) == payload
    assert json.loads(payload.to_json())["access_token_expiry"] == "2099-06-30T12:00:00Z"


def test_expiry_is_compared_with_now() -> None:
    payload = TokenPayload.from_mapping(VALID_A)
    assert not payload.is_expired(datetime(2099, 6, 30, 11, 59, tzinfo=UTC))
    assert payload.is_expired(datetime(2099, 6, 30, 12, 0, tzinfo=UTC))
