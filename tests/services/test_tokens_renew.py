from __future__ import annotations

import pytest

from adesync.commands.wording import cli_words
from adesync.services import tokens as service
from adesync.store import token_repo
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.tokens import KeyPair
from tests.fixtures.token_files import expiry, keypair, payload, seed_pending, snapshot, token_file
from tests.services.test_tokens_add import IDENTITY, identity_of


async def _keys(db: Database, box: SecretBox) -> tuple[str | None, str | None]:
    """Which fixture key pair (a or b) is token north's pending one and which its active one."""
    async with db.read() as session:
        row = await token_repo.get_token(session, "north")
    assert row is not None
    known = {keypair(name).certificates_pem(): name for name in ("a", "b")}

    def which(slot: str) -> str | None:
        if row[f"{slot}_private_key"] is None:
            return None
        pair = KeyPair.from_pem(box.open(row[f"{slot}_private_key"]), row[f"{slot}_certificates"])
        return known[pair.certificates_pem()]  # from_pem checked the key belongs to them

    return which("pending"), which("active")


async def _added_with_key_b(db: Database, box: SecretBox) -> None:
    await seed_pending(db, box, "north", keypair("b"))
    await service.add_token(db, box, "north", token_file("b-aes128-ber.p7m"))


async def test_the_active_key_keeps_working_until_a_token_for_the_pending_key_is_accepted(
    db: Database, box: SecretBox
) -> None:
    await _added_with_key_b(db, box)
    assert await _keys(db, box) == (None, "b")
    # `tokens keypair north --new` (here with fixture key a, so the fixture files decrypt).
    await seed_pending(db, box, "north", keypair("a"))
    assert await _keys(db, box) == ("a", "b")

    renewed = await service.renew_token(db, box, "north", token_file("b-aes128-ber.p7m"))
    assert not renewed.key_promoted
    assert await _keys(db, box) == ("a", "b")

    with pytest.raises(service.TokenFileInvalid):
        await service.renew_token(db, box, "north", token_file("a-not-json.p7m"))
    with pytest.raises(service.TokenFileExpired):
        await service.renew_token(db, box, "north", token_file("a-expired.p7m"))
    assert await _keys(db, box) == ("a", "b")

    renewed = await service.renew_token(db, box, "north", token_file("a-aes128-ber.p7m"))
    assert renewed.key_promoted
    assert renewed.token["expires_at"] == expiry("a-aes128-ber.p7m")
    assert renewed.token["renewed_at"] is not None
    assert await _keys(db, box) == (None, "a")

    # The old key is gone now: a token made for it is foreign.
    with pytest.raises(service.TokenFileForeign):
        await service.renew_token(db, box, "north", token_file("b-aes128-ber.p7m"))


async def test_renew_replaces_the_credentials(db: Database, box: SecretBox) -> None:
    await seed_pending(db, box, "north", keypair("a"))
    await service.add_token(db, box, "north", token_file("a-aes128-ber.p7m"))
    await seed_pending(db, box, "north", keypair("b"))
    await service.renew_token(db, box, "north", token_file("b-aes128-ber.p7m"))
    async with db.read() as session:
        row = await token_repo.get_token(session, "north")
    assert row is not None
    assert service.open_credentials(box, row) == payload("b-aes128-ber.p7m")
    assert row["access_token_expiry"] == expiry("b-aes128-ber.p7m")


async def test_a_different_consumer_key_is_refused_unless_forced(
    db: Database, box: SecretBox
) -> None:
    await seed_pending(db, box, "north", keypair("a"))
    await service.add_token(db, box, "north", token_file("a-aes128-ber.p7m"))
    before = await snapshot(db)
    with pytest.raises(service.DifferentServer) as caught:
        await service.renew_token(db, box, "north", token_file("a-other-consumer.p7m"))
    assert "consumer key" in cli_words(caught.value) and "--force" in cli_words(caught.value)
    assert await snapshot(db) == before
    forced = await service.renew_token(
        db, box, "north", token_file("a-other-consumer.p7m"), force=True
    )
    assert forced.warnings == ("different_server",)


async def test_a_different_server_uuid_is_refused_unless_forced(
    db: Database, box: SecretBox
) -> None:
    await seed_pending(db, box, "north", keypair("a"))
    await service.add_token(db, box, "north", token_file("a-aes128-ber.p7m"), verify=identity_of())
    other = identity_of(server_uuid="00000000-0000-0000-0000-000000000000")
    before = await snapshot(db)
    with pytest.raises(service.DifferentServer, match=IDENTITY.server_uuid):
        await service.renew_token(db, box, "north", token_file("a-aes256.p7m"), verify=other)
    assert await snapshot(db) == before
    forced = await service.renew_token(
        db, box, "north", token_file("a-aes256.p7m"), verify=other, force=True
    )
    assert forced.warnings == ("different_server",)
    assert forced.token["server_uuid"] == "00000000-0000-0000-0000-000000000000"


async def test_an_unverified_renewal_keeps_the_identity_but_marks_it_unverified(
    db: Database, box: SecretBox
) -> None:
    await seed_pending(db, box, "north", keypair("a"))
    await service.add_token(db, box, "north", token_file("a-aes128-ber.p7m"), verify=identity_of())
    renewed = await service.renew_token(db, box, "north", token_file("a-aes256.p7m"))
    assert renewed.token["server_uuid"] == IDENTITY.server_uuid
    assert renewed.token["identity_verified_at"] is None


async def test_renew_of_an_unknown_or_waiting_token_says_what_to_do(
    db: Database, box: SecretBox
) -> None:
    with pytest.raises(service.TokenNotFound, match="no token called north"):
        await service.renew_token(db, box, "north", token_file("a-aes128-ber.p7m"))
    await seed_pending(db, box, "north", keypair("a"))
    with pytest.raises(service.TokenNotAdded) as caught:
        await service.renew_token(db, box, "north", token_file("a-aes128-ber.p7m"))
    assert "tokens add north" in cli_words(caught.value)
