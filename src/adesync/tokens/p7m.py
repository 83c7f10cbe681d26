"""Decrypting the ``.p7m`` server-token file ABM/ASM hands out.

The file is MIME headers and a base64 body holding CMS EnvelopedData. Apple encodes it in BER
with indefinite lengths, which ``cryptography``'s PKCS#7 functions cannot parse, so the structure
is read with ``asn1crypto`` and the cryptography is done with ``cryptography``.

Exactly two failures reach the caller, both without a library's message: ForeignTokenFile when the
CMS is readable but none of its recipients (issuer and serial number) is a certificate of the
given key pairs — decided before any RSA operation — and DamagedTokenFile for everything else.
Once a recipient matches, every failure goes down one path: a content key that does not unwrap is
replaced by a random key of the right length (the Bleichenbacher countermeasure of RFC 3218), so
it fails where a wrong key would, at the content padding or the payload, with the same error.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, algorithms, modes

from adesync.tokens.errors import DamagedTokenFile, ForeignTokenFile
from adesync.tokens.keypair import KeyPair
from adesync.tokens.payload import TokenPayload, parse_token_message

MAX_TOKEN_FILE_BYTES = 64 * 1024
_HEADER_LINE = re.compile(rb"^[A-Za-z0-9-]+:")
_WHITESPACE = re.compile(rb"\s+")


@dataclass(frozen=True)
class ContentCipher:
    """A content-encryption algorithm adesync accepts in a token file."""

    name: str
    key_length: int
    block_bytes: int
    algorithm: Callable[[bytes], BlockCipherAlgorithm]


# asn1crypto's names for the CBC ciphers Apple's sample and the other implementations use.
CONTENT_CIPHERS: dict[str, ContentCipher] = {
    "aes128_cbc": ContentCipher("AES-128-CBC", 16, 16, algorithms.AES),
    "aes192_cbc": ContentCipher("AES-192-CBC", 24, 16, algorithms.AES),
    "aes256_cbc": ContentCipher("AES-256-CBC", 32, 16, algorithms.AES),
    "tripledes_3key": ContentCipher("3DES-CBC", 24, 8, TripleDES),
}


@dataclass(frozen=True)
class DecryptedToken:
    """A decrypted token file and which of the offered key pairs opened it."""

    payload: TokenPayload
    keypair: KeyPair
    content_cipher: str


@dataclass(frozen=True)
class _Recipient:
    issuer: str  # asn1crypto's normalised form of the issuer name
    serial: int
    key_transport: str
    encrypted_key: bytes


@dataclass(frozen=True)
class _Envelope:
    recipients: tuple[_Recipient, ...]
    cipher: ContentCipher
    iv: bytes
    ciphertext: bytes


def _unwrap_smime(data: bytes) -> bytes:
    """The CMS bytes of a token file: MIME headers + base64 (or bare base64, or raw DER)."""
    if not data or len(data) > MAX_TOKEN_FILE_BYTES:
        raise DamagedTokenFile()
    if data[:1] == b"\x30":  # already binary CMS (an ASN.1 SEQUENCE)
        return data
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if _HEADER_LINE.match(lines[0]):
        blank = next((i for i, line in enumerate(lines) if not line.strip()), None)
        if blank is None:
            raise DamagedTokenFile()
        headers = _headers(lines[:blank])
        content_type = headers.get(b"content-type", b"")
        encoding = headers.get(b"content-transfer-encoding", b"base64")
        if b"pkcs7-mime" not in content_type.lower() or encoding.strip().lower() != b"base64":
            raise DamagedTokenFile()
        lines = lines[blank + 1 :]
    body = _WHITESPACE.sub(b"", b"".join(lines))
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise DamagedTokenFile() from None
    if not der:
        raise DamagedTokenFile()
    return der


def _headers(lines: list[bytes]) -> dict[bytes, bytes]:
    headers: dict[bytes, bytes] = {}
    name = b""
    for line in lines:
        if line[:1] in (b" ", b"\t") and name:  # a folded continuation line
            headers[name] += b" " + line.strip()
            continue
        if not _HEADER_LINE.match(line):
            raise DamagedTokenFile()
        raw_name, _, value = line.partition(b":")
        name = raw_name.strip().lower()
        headers[name] = value.strip()
    return headers


def _parse_envelope(der: bytes) -> _Envelope:
    """Read the EnvelopedData into plain values; any parse failure is DamagedTokenFile."""
    # asn1crypto parses lazily and raises assorted exception types on hostile input; this
    # block only turns bytes into plain values, so any exception in it means a bad file.
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "enveloped_data":
            raise DamagedTokenFile()
        enveloped = info["content"]
        content_info = enveloped["encrypted_content_info"]
        algorithm = content_info["content_encryption_algorithm"]
        cipher = CONTENT_CIPHERS.get(algorithm["algorithm"].native)
        if cipher is None:
            raise DamagedTokenFile()
        iv = algorithm.encryption_iv
        ciphertext = content_info["encrypted_content"].native
        recipients = tuple(_recipients(enveloped["recipient_infos"]))
    except DamagedTokenFile:
        raise
    except Exception:
        raise DamagedTokenFile() from None
    if (
        not isinstance(iv, bytes)
        or len(iv) != cipher.block_bytes
        or not isinstance(ciphertext, bytes)
        or not ciphertext
        or len(ciphertext) % cipher.block_bytes
    ):
        raise DamagedTokenFile()
    return _Envelope(recipients, cipher, iv, ciphertext)


def _recipients(infos: cms.RecipientInfos) -> list[_Recipient]:
    found = []
    for info in infos:
        if info.name != "ktri":
            continue  # key agreement, KEK or password recipients cannot be an RSA key's
        ktri = info.chosen
        rid = ktri["rid"]
        if rid.name != "issuer_and_serial_number":
            continue
        found.append(
            _Recipient(
                issuer=rid.chosen["issuer"].hashable,
                serial=int(rid.chosen["serial_number"].native),
                key_transport=str(ktri["key_encryption_algorithm"]["algorithm"].native),
                encrypted_key=bytes(ktri["encrypted_key"].native),
            )
        )
    return found


def _certificate_ids(keypair: KeyPair) -> set[tuple[str, int]]:
    ids = set()
    for cert in keypair.certificates:
        parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
        ids.add((parsed.issuer.hashable, int(parsed.serial_number)))
    return ids


def _unwrap_content_key(private_key: rsa.RSAPrivateKey, encrypted: bytes, length: int) -> bytes:
    # Drawn before trying, so both outcomes do the same work; a failed unwrap must not be
    # told apart from a wrong key (no padding oracle).
    substitute = os.urandom(length)
    try:
        key = private_key.decrypt(encrypted, PKCS1v15())
    except ValueError:
        return substitute
    return key if len(key) == length else substitute


def _open_content(keypair: KeyPair, recipient: _Recipient, envelope: _Envelope) -> TokenPayload:
    """Decrypt with one matched recipient; every failure is the same DamagedTokenFile."""
    cipher = envelope.cipher
    key = _unwrap_content_key(keypair.private_key, recipient.encrypted_key, cipher.key_length)
    try:
        decryptor = Cipher(cipher.algorithm(key), modes.CBC(envelope.iv)).decryptor()
        padded = decryptor.update(envelope.ciphertext) + decryptor.finalize()
        unpadder = padding.PKCS7(cipher.block_bytes * 8).unpadder()
        plaintext = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise DamagedTokenFile() from None
    return parse_token_message(plaintext)


def open_token_file(data: bytes, keys: Sequence[KeyPair]) -> DecryptedToken:
    """Decrypt ``data`` with the first of ``keys`` (in order) that it was made for.

    Raises ForeignTokenFile when no recipient is a certificate of ``keys`` and
    DamagedTokenFile for any other failure.
    """
    envelope = _parse_envelope(_unwrap_smime(data))
    candidates: list[tuple[KeyPair, _Recipient]] = []
    for keypair in keys:
        ids = _certificate_ids(keypair)
        candidates.extend(
            (keypair, recipient)
            for recipient in envelope.recipients
            if (recipient.issuer, recipient.serial) in ids
        )
    if not candidates:
        raise ForeignTokenFile()
    for keypair, recipient in candidates:
        if recipient.key_transport not in ("rsa", "rsaes_pkcs1v15"):
            continue  # decided from the structure alone, before any RSA operation
        try:
            payload = _open_content(keypair, recipient, envelope)
        except DamagedTokenFile:
            continue
        return DecryptedToken(payload, keypair, envelope.cipher.name)
    raise DamagedTokenFile()


def decrypt_token_file(data: bytes, keys: Sequence[KeyPair]) -> TokenPayload:
    """The payload of a ``.p7m`` token file made for one of ``keys`` (see open_token_file)."""
    return open_token_file(data, keys).payload


__all__ = [
    "CONTENT_CIPHERS",
    "MAX_TOKEN_FILE_BYTES",
    "DecryptedToken",
    "decrypt_token_file",
    "open_token_file",
]
