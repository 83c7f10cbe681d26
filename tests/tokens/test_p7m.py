from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15

from adesync.tokens import (
    MAX_TOKEN_FILE_BYTES,
    DamagedTokenFile,
    ForeignTokenFile,
    KeyPair,
    TokenFileError,
    decrypt_token_file,
    open_token_file,
)
from adesync.tokens.p7m import _unwrap_content_key
from tests.fixtures.token_files import (
    VALID_A_FILES,
    first_certificate_only,
    keypair,
    payload,
    token_file,
)
from tests.tokens.smime import (
    ciphertext_of,
    cms_bytes,
    encrypted_key,
    with_ciphertext,
    with_encrypted_key,
    wrap,
)

DAMAGED = "This file is damaged or is not an ABM/ASM server token."


@pytest.mark.parametrize(("name", "cipher"), sorted(VALID_A_FILES.items()))
def test_token_files_from_openssl_and_cryptography_decrypt(name: str, cipher: str) -> None:
    opened = open_token_file(token_file(name), [keypair("a")])
    assert opened.payload == payload(name)
    assert opened.content_cipher == cipher
    assert opened.keypair is keypair("a")


def test_the_openssl_stream_fixture_is_ber_with_indefinite_lengths() -> None:
    # The encoding Apple's sample uses and cryptography's own PKCS#7 parser rejects.
    assert cms_bytes(token_file("a-aes128-ber.p7m"))[:2] == b"\x30\x80"
    assert cms_bytes(token_file("a-aes128-der.p7m"))[:2] == b"\x30\x82"


def test_a_token_for_a_reissued_certificate_of_the_same_key_decrypts() -> None:
    data = token_file("a-reissued-cert.p7m")
    assert decrypt_token_file(data, [keypair("a")]) == payload("a-reissued-cert.p7m")
    # Without the re-issued certificate the file names no certificate of the key.
    with pytest.raises(ForeignTokenFile):
        decrypt_token_file(data, [first_certificate_only("a")])


def test_the_recipient_that_matches_is_used_not_the_first() -> None:
    opened = open_token_file(token_file("other-and-a.p7m"), [keypair("a")])
    assert opened.payload == payload("other-and-a.p7m")


def test_keys_are_tried_in_the_order_given() -> None:
    opened = open_token_file(token_file("b-aes128-ber.p7m"), [keypair("a"), keypair("b")])
    assert opened.keypair is keypair("b")
    assert opened.payload == payload("b-aes128-ber.p7m")


def test_raw_der_and_bare_base64_are_accepted_too() -> None:
    der = cms_bytes(token_file("a-aes128-ber.p7m"))
    assert decrypt_token_file(der, [keypair("a")]) == payload("a-aes128-ber.p7m")
    assert decrypt_token_file(base64.encodebytes(der), [keypair("a")]).consumer_key


@pytest.mark.parametrize(
    ("name", "keys"),
    [("other-aes128-ber.p7m", ("a", "b")), ("a-aes128-ber.p7m", ("b",)), ("a-des3.p7m", ("b",))],
)
def test_a_file_for_another_key_is_foreign(name: str, keys: tuple[str, ...]) -> None:
    with pytest.raises(ForeignTokenFile) as caught:
        decrypt_token_file(token_file(name), [keypair(k) for k in keys])
    assert str(caught.value) == "This token was made for another MDM server's key."


class SpyKey(rsa.RSAPrivateKey):
    """A real RSA key that counts its private-key decryptions."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key
        self.decryptions = 0

    def decrypt(self, ciphertext: bytes, padding: Any) -> bytes:
        self.decryptions += 1
        return self.key.decrypt(ciphertext, padding)

    @property
    def key_size(self) -> int:
        return self.key.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self.key.public_key()

    def sign(self, data: bytes, padding: Any, algorithm: Any) -> bytes:
        return self.key.sign(data, padding, algorithm)

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        return self.key.private_numbers()

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        return self.key.private_bytes(encoding, format, encryption_algorithm)

    def __copy__(self) -> SpyKey:
        return self

    def __deepcopy__(self, memo: Any) -> SpyKey:
        return self


def test_a_foreign_file_is_decided_before_any_rsa_operation() -> None:
    spy = SpyKey(keypair("b").private_key)
    spied = KeyPair(spy, keypair("b").certificates)
    with pytest.raises(ForeignTokenFile):
        decrypt_token_file(token_file("a-aes128-ber.p7m"), [spied])
    assert spy.decryptions == 0
    # The spy does decrypt when its certificate is named.
    decrypt_token_file(token_file("b-aes128-ber.p7m"), [spied])
    assert spy.decryptions == 1


def _flip(data: bytes, index: int) -> bytes:
    flipped = bytearray(data)
    flipped[index] ^= 0x01
    return bytes(flipped)


def _damaged_files() -> dict[str, bytes]:
    good = token_file("a-aes128-ber.p7m")
    der = cms_bytes(good)
    ciphertext = ciphertext_of(good)
    return {
        "empty": b"",
        "random bytes": os.urandom(1400),
        "random text": base64.b64encode(os.urandom(1000)),
        "truncated": good[: len(good) // 2],
        "truncated cms": wrap(der[: len(der) - 40]),
        "bit flipped in the last block": with_ciphertext(
            good, _flip(ciphertext, len(ciphertext) - 1)
        ),
        "bit flipped in the wrapped key": with_encrypted_key(good, _flip(encrypted_key(good), 5)),
        "ciphertext not whole blocks": with_ciphertext(good, ciphertext[:-3]),
        "not json": token_file("a-not-json.p7m"),
        "missing field": token_file("a-missing-field.p7m"),
        "bad expiry": token_file("a-bad-expiry.p7m"),
        "over 64 KiB": good + b"\n" * (MAX_TOKEN_FILE_BYTES + 1 - len(good)),
        "not base64": good.replace(b"MIAG", b"M!AG"),
        "a certificate, not a token": keypair("a").certificate_pem().encode(),
        "mime type of something else": good.replace(b"application/x-pkcs7-mime", b"text/plain"),
        "headers without a body": good.split(b"\n\n")[0],
    }


@pytest.mark.parametrize("case", sorted(_damaged_files()))
def test_every_other_failure_is_the_same_damaged_error(case: str) -> None:
    data = _damaged_files()[case]
    with pytest.raises(DamagedTokenFile) as caught:
        decrypt_token_file(data, [keypair("a"), keypair("b")])
    assert str(caught.value) == DAMAGED
    assert caught.value.__cause__ is None


def test_a_wrapped_key_that_does_not_unwrap_fails_like_a_wrong_key() -> None:
    good = token_file("a-aes128-ber.p7m")
    public = keypair("a").private_key.public_key()
    cases = {
        "garbage": with_encrypted_key(good, os.urandom(256)),
        "wrong length": with_encrypted_key(good, public.encrypt(b"12345", PKCS1v15())),
        "right length, wrong key": with_encrypted_key(
            good, public.encrypt(os.urandom(16), PKCS1v15())
        ),
        "too short for rsa": with_encrypted_key(good, b"\x00" * 8),
    }
    for data in cases.values():
        with pytest.raises(TokenFileError) as caught:
            decrypt_token_file(data, [keypair("a")])
        assert type(caught.value) is DamagedTokenFile
        assert str(caught.value) == DAMAGED


def test_an_unwrap_failure_yields_a_random_key_of_the_right_length() -> None:
    key = keypair("a").private_key
    public = key.public_key()
    content_key = os.urandom(16)
    assert _unwrap_content_key(key, public.encrypt(content_key, PKCS1v15()), 16) == content_key
    garbage = [_unwrap_content_key(key, os.urandom(256), 16) for _ in range(3)]
    assert all(len(k) == 16 for k in garbage)
    assert len(set(garbage)) == 3
    short = _unwrap_content_key(key, public.encrypt(b"12345", PKCS1v15()), 24)
    assert len(short) == 24
    assert _unwrap_content_key(key, b"", 32) != _unwrap_content_key(key, b"", 32)
