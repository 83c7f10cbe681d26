from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from adesync.commands.wording import cli_words
from adesync.errors import AdesyncError
from adesync.services import tokens as service
from adesync.store import token_repo
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.tokens import KeyPair, TokenPayload, generate_keypair
from tests.fixtures.token_files import (
    expiry,
    keypair,
    payload,
    seed_pending,
    snapshot,
    token_file,
)
from tests.tokens.smime import ciphertext_of, with_ciphertext

IDENTITY = service.AccountIdentity(
    server_uuid="677cd4b2-8cba-4c9f-a1f2-0d35b3b8d4e1",
    server_name="North MDM",
    org_name="Example School",
    org_email="it@example.edu",
    org_phone="+1 555 0100",
    org_address="1 Infinite Loop",
    org_id="1234567",
    org_id_hash="abc123",
    org_type="edu",
    org_version="v2",
    admin_id="admin@example.edu",
)


def identity_of(**changes: str) -> service.Verify:
    """The /account check as the ADE client will supply it, answering with a fixed identity."""

    async def verify(credentials: TokenPayload, dep_url: str) -> service.AccountIdentity:
        assert credentials.access_secret and dep_url
        return service.AccountIdentity(**{**IDENTITY.columns(), **changes})  # type: ignore[arg-type]

    return verify


async def test_add_stores_sealed_credentials_and_promotes_the_pending_key(
    db: Database, box: SecretBox
) -> None:
    await seed_pending(db, box, "north", keypair("a"))
    result = await service.add_token(db, box, "north", token_file("a-aes128-ber.p7m"))
    assert result.key_promoted and not result.identity_verified and result.warnings == ()
    assert result.content_cipher == "AES-128-CBC"
    doc = result.token
    assert doc["status"] == "installed"
    assert doc["expires_at"] == expiry("a-aes128-ber.p7m")
    assert doc["identity_verified_at"] is None and doc["server_uuid"] is None
    assert doc["token_type"] == "abm" and doc["dep_url"] == service.DEFAULT_DEP_URL
    async with db.read() as session:
        row = await token_repo.get_token(session, "north")
    assert row is not None
    assert row["pending_private_key"] is None and row["active_private_key"] is not None
    assert KeyPair.from_pem(box.open(row["active_private_key"]), row["active_certificates"])
    assert row["token_added_at"] is not None and row["token_renewed_at"] is None
    sealed = row["oauth_credentials"]
    assert b"CS_" not in sealed and b"AS_" not in sealed
    assert service.open_credentials(box, row) == payload("a-aes128-ber.p7m")


async def test_add_keeps_the_dep_url_and_type_given(db: Database, box: SecretBox) -> None:
    await seed_pending(db, box, "north", keypair("a"))
    result = await service.add_token(
        db,
        box,
        "north",
        token_file("a-des3.p7m"),
        dep_url="http://127.0.0.1:8080/",
        token_type="asm",
    )
    assert result.token["dep_url"] == "http://127.0.0.1:8080"
    assert result.token["token_type"] == "asm"


async def test_add_with_verify_stores_apple_s_identity(db: Database, box: SecretBox) -> None:
    await seed_pending(db, box, "north", keypair("a"))
    result = await service.add_token(
        db, box, "north", token_file("a-aes256.p7m"), verify=identity_of()
    )
    assert result.identity_verified
    shown = await service.show_token(db, "north")
    for column, value in IDENTITY.columns().items():
        assert shown[column] == value
    assert shown["identity_verified_at"] is not None


async def test_a_refusing_verify_stores_nothing(db: Database, box: SecretBox) -> None:
    await seed_pending(db, box, "north", keypair("a"))
    before = await snapshot(db)

    async def apple_says_no(credentials: TokenPayload, dep_url: str) -> service.AccountIdentity:
        raise AdesyncError("Apple rejected this token.", code="token_rejected")

    with pytest.raises(AdesyncError, match="Apple rejected"):
        await service.add_token(
            db, box, "north", token_file("a-aes128-ber.p7m"), verify=apple_says_no
        )
    assert await snapshot(db) == before


async def test_add_without_a_key_pair_says_to_run_keypair_first(
    db: Database, box: SecretBox
) -> None:
    with pytest.raises(service.KeyPairMissing) as caught:
        await service.add_token(db, box, "north", token_file("a-aes128-ber.p7m"))
    assert "`adesync tokens keypair north`" in cli_words(caught.value)
    assert await snapshot(db) == []


async def test_adding_twice_points_to_renew(db: Database, box: SecretBox) -> None:
    await seed_pending(db, box, "north", keypair("a"))
    await service.add_token(db, box, "north", token_file("a-aes128-ber.p7m"))
    before = await snapshot(db)
    with pytest.raises(service.TokenAlreadyAdded) as caught:
        await service.add_token(db, box, "north", token_file("a-aes128-ber.p7m"))
    assert "tokens renew north" in cli_words(caught.value)
    assert await snapshot(db) == before


def _bad_files() -> dict[str, tuple[bytes, type[AdesyncError]]]:
    good = token_file("a-aes128-ber.p7m")
    ciphertext = bytearray(ciphertext_of(good))
    ciphertext[-20] ^= 0x40
    return {
        "truncated": (good[: len(good) - 200], service.TokenFileInvalid),
        "bit-flipped": (with_ciphertext(good, bytes(ciphertext)), service.TokenFileInvalid),
        "wrong recipient": (token_file("other-aes128-ber.p7m"), service.TokenFileForeign),
        "empty": (b"", service.TokenFileInvalid),
        "random bytes": (bytes(range(256)) * 5, service.TokenFileInvalid),
        "valid cms, not json": (token_file("a-not-json.p7m"), service.TokenFileInvalid),
        "missing field": (token_file("a-missing-field.p7m"), service.TokenFileInvalid),
        "unparseable expiry": (token_file("a-bad-expiry.p7m"), service.TokenFileInvalid),
        "over 64 KiB": (good + b" " * 65536, service.TokenFileInvalid),
        "expired": (token_file("a-expired.p7m"), service.TokenFileExpired),
    }


@pytest.mark.parametrize("case", sorted(_bad_files()))
async def test_a_bad_file_gets_one_clear_error_and_changes_nothing(
    db: Database, box: SecretBox, case: str
) -> None:
    data, error = _bad_files()[case]
    await seed_pending(db, box, "north", keypair("a"))
    before = await snapshot(db)
    with pytest.raises(error) as caught:
        await service.add_token(db, box, "north", data, verify=identity_of())
    message = cli_words(caught.value)
    assert message.count(".") <= 2 and "\n" not in message
    if error is service.TokenFileInvalid:
        assert message.startswith("This file is damaged or is not an ABM/ASM server token")
    if error is service.TokenFileForeign:
        assert "another MDM server's key" in message
        assert "`adesync tokens keypair north`" in message
    if error is service.TokenFileExpired:
        assert "2020-01-01" in message
    assert await snapshot(db) == before


async def test_the_expiry_is_judged_against_now(db: Database, box: SecretBox) -> None:
    await seed_pending(db, box, "north", keypair("a"))
    with pytest.raises(service.TokenFileExpired):
        await service.add_token(
            db, box, "north", token_file("a-aes128-ber.p7m"), now=datetime(2100, 1, 1, tzinfo=UTC)
        )


@pytest.mark.parametrize(
    ("options", "flag"),
    [({"dep_url": "ftp://example.com"}, "--dep-url"), ({"token_type": "vpp"}, "--type")],
)
async def test_bad_options_are_refused_before_anything_happens(
    db: Database, box: SecretBox, options: dict[str, str], flag: str
) -> None:
    await seed_pending(db, box, "north", keypair("a"))
    before = await snapshot(db)
    with pytest.raises(service.OptionInvalid) as caught:
        await service.add_token(db, box, "north", token_file("a-aes128-ber.p7m"), **options)  # type: ignore[arg-type]
    assert flag in cli_words(caught.value)
    assert flag not in caught.value.message  # the service names no CLI flag
    assert await snapshot(db) == before


async def test_a_second_token_for_the_same_server_is_refused_unless_forced(
    db: Database, box: SecretBox
) -> None:
    for name in ("north", "north-copy"):
        await seed_pending(db, box, name, keypair("a"))
    await service.add_token(db, box, "north", token_file("a-aes128-ber.p7m"), verify=identity_of())
    before = await snapshot(db)
    with pytest.raises(service.DuplicateServer) as caught:
        await service.add_token(
            db, box, "north-copy", token_file("a-aes128-ber.p7m"), verify=identity_of()
        )
    assert caught.value.code == "duplicate_server"
    assert "north" in cli_words(caught.value) and "--force" in cli_words(caught.value)
    assert await snapshot(db) == before
    forced = await service.add_token(
        db, box, "north-copy", token_file("a-aes128-ber.p7m"), verify=identity_of(), force=True
    )
    assert forced.warnings == ("duplicate_server",)
    assert forced.duplicate_of == ("north",)


async def test_without_verify_the_server_is_unknown_so_no_duplicate_is_refused(
    db: Database, box: SecretBox
) -> None:
    for name in ("north", "north-copy"):
        await seed_pending(db, box, name, keypair("a"))
        await service.add_token(db, box, name, token_file("a-aes128-ber.p7m"))
    assert [d["name"] for d in await service.list_tokens(db)] == ["north", "north-copy"]


async def test_a_key_pair_replaced_during_the_apple_check_is_not_overwritten(
    db: Database, box: SecretBox
) -> None:
    await seed_pending(db, box, "north", keypair("a"))

    async def meanwhile_keypair_new(
        credentials: TokenPayload, dep_url: str
    ) -> service.AccountIdentity:
        await seed_pending(db, box, "north", keypair("b"))
        return IDENTITY

    with pytest.raises(service.TokenChanged):
        await service.add_token(
            db, box, "north", token_file("a-aes128-ber.p7m"), verify=meanwhile_keypair_new
        )
    async with db.read() as session:
        row = await token_repo.get_token(session, "north")
    assert row is not None and row["oauth_credentials"] is None


async def test_seed_token_stores_even_an_expired_token(db: Database, box: SecretBox) -> None:
    doc = await service.seed_token(
        db, box, "old", payload("a-expired.p7m"), generate_keypair("old"), identity=IDENTITY
    )
    assert doc["expires_at"] == expiry("a-expired.p7m")
    assert doc["org_name"] == "Example School"
    assert json.dumps(doc, default=str).count("CS_") == 0
