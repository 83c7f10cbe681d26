from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509

from adesync.services import tokens as service
from adesync.store import token_repo
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.store.types import utcnow
from tests.fixtures.token_files import first_certificate_only, seed_pending, token_file


async def _row(db: Database, name: str) -> dict[str, object]:
    async with db.read() as session:
        row = await token_repo.get_token(session, name)
    assert row is not None
    return dict(row)


async def test_a_new_name_gets_a_pending_key_pair_sealed_at_rest(
    db: Database, box: SecretBox
) -> None:
    result = await service.keypair_certificate(db, box, "north")
    assert result.created and result.slot == "pending" and not result.has_token
    cert = x509.load_pem_x509_certificate(result.certificate_pem.encode())
    row = await _row(db, "north")
    assert row["pending_certificates"] == result.certificate_pem
    sealed = row["pending_private_key"]
    assert isinstance(sealed, bytes) and b"PRIVATE KEY" not in sealed
    assert b"PRIVATE KEY" in box.open(sealed)
    assert row["active_private_key"] is None and row["oauth_credentials"] is None
    assert cert.not_valid_after_utc == result.not_after


async def test_asking_again_hands_out_the_same_certificate(db: Database, box: SecretBox) -> None:
    first = await service.keypair_certificate(db, box, "north")
    again = await service.keypair_certificate(db, box, "north")
    assert not again.created and not again.reissued
    assert again.certificate_pem == first.certificate_pem


async def test_new_replaces_the_pending_key_pair(db: Database, box: SecretBox) -> None:
    first = await service.keypair_certificate(db, box, "north")
    fresh = await service.keypair_certificate(db, box, "north", new=True)
    assert fresh.created and fresh.certificate_pem != first.certificate_pem
    assert (await _row(db, "north"))["pending_certificates"] == fresh.certificate_pem


async def test_an_existing_token_hands_out_its_active_certificate(
    db: Database, box: SecretBox
) -> None:
    pair = first_certificate_only("a")
    await seed_pending(db, box, "north", pair)
    await service.add_token(db, box, "north", token_file("a-aes128-ber.p7m"))
    result = await service.keypair_certificate(db, box, "north")
    assert result.slot == "active" and not result.created and result.has_token
    assert result.certificate_pem == pair.certificate_pem()


async def test_a_certificate_near_its_end_is_reissued_and_the_old_one_kept(
    db: Database, box: SecretBox
) -> None:
    pair = first_certificate_only("a")
    await seed_pending(db, box, "north", pair)
    late = pair.certificate.not_valid_after_utc - timedelta(days=30)
    result = await service.keypair_certificate(db, box, "north", now=late)
    assert result.reissued and not result.created
    assert result.certificate_pem != pair.certificate_pem()
    stored = (await _row(db, "north"))["pending_certificates"]
    assert isinstance(stored, str)
    assert stored.startswith(pair.certificate_pem()) and stored.endswith(result.certificate_pem)
    # A token ABM/ASM made for the earlier certificate still decrypts.
    added = await service.add_token(db, box, "north", token_file("a-aes128-ber.p7m"), now=late)
    assert added.key_promoted


@pytest.mark.parametrize("name", ["", "has space", "-leading-dash", "x" * 101, "a/b"])
async def test_an_unusable_name_is_refused(db: Database, box: SecretBox, name: str) -> None:
    with pytest.raises(service.TokenNameInvalid):
        await service.keypair_certificate(db, box, name)
    assert await service.list_tokens(db, include_waiting=True) == []


async def test_the_certificate_is_valid_five_years_from_now(db: Database, box: SecretBox) -> None:
    now = utcnow().replace(microsecond=0)  # certificates keep whole seconds
    result = await service.keypair_certificate(db, box, "north", now=now)
    assert result.not_after - now == timedelta(days=1826)
