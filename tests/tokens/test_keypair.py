from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.x509.oid import NameOID

from adesync.tokens import CERTIFICATE_VALIDITY, KeyPair, KeyPairError, generate_keypair
from tests.fixtures.token_files import keypair

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def fresh() -> KeyPair:
    return generate_keypair("north-campus", now=NOW)


def test_a_new_key_pair_is_rsa_2048_with_a_self_signed_sha256_certificate(fresh: KeyPair) -> None:
    assert isinstance(fresh.private_key, rsa.RSAPrivateKey)
    assert fresh.private_key.key_size == 2048
    cert = fresh.certificate
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.issuer == cert.subject
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(
        cert.signature, cert.tbs_certificate_bytes, PKCS1v15(), hashes.SHA256()
    )  # raises if the certificate was not signed by its own key
    assert public.public_numbers() == fresh.private_key.public_key().public_numbers()


def test_the_certificate_names_adesync_and_the_token_and_lasts_five_years(fresh: KeyPair) -> None:
    cert = fresh.certificate
    (cn,) = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert "adesync" in str(cn.value)
    assert "north-campus" in str(cn.value)
    assert cert.not_valid_before_utc <= NOW
    assert cert.not_valid_after_utc == NOW + CERTIFICATE_VALIDITY
    assert timedelta(days=5 * 365) <= CERTIFICATE_VALIDITY
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_encipherment


def test_a_long_token_name_still_fits_the_common_name_limit() -> None:
    pair = generate_keypair("x" * 100, now=NOW)
    (cn,) = pair.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert len(str(cn.value)) == 64


def test_a_reissued_certificate_is_kept_beside_the_earlier_one(fresh: KeyPair) -> None:
    later = fresh.with_new_certificate("north-campus", now=NOW + timedelta(days=1800))
    assert later.private_key is fresh.private_key
    assert later.certificates[0] == fresh.certificate
    assert later.certificate.serial_number != fresh.certificate.serial_number
    assert later.certificate.not_valid_after_utc > fresh.certificate.not_valid_after_utc
    assert len(later.certificates) == 2


def test_pem_round_trip_keeps_the_key_and_every_certificate() -> None:
    pair = keypair("a")
    again = KeyPair.from_pem(pair.private_key_pem(), pair.certificates_pem())
    assert again.certificates == pair.certificates
    assert again.private_key.private_numbers() == pair.private_key.private_numbers()
    assert b"ENCRYPTED" not in pair.private_key_pem()  # sealing is the store's job


def test_the_repr_of_a_key_pair_shows_no_private_key() -> None:
    assert "private" not in repr(keypair("a")).lower()


def test_a_certificate_of_another_key_is_refused() -> None:
    with pytest.raises(KeyPairError, match="does not belong"):
        KeyPair.from_pem(keypair("a").private_key_pem(), keypair("b").certificates_pem())


@pytest.mark.parametrize(
    ("key", "certs"),
    [
        (b"not a key", None),
        (None, "not a certificate"),
        (None, ""),
    ],
)
def test_unreadable_key_material_is_a_key_pair_error(key: bytes | None, certs: str | None) -> None:
    with pytest.raises(KeyPairError):
        KeyPair.from_pem(
            key if key is not None else keypair("a").private_key_pem(),
            certs if certs is not None else keypair("a").certificates_pem(),
        )
