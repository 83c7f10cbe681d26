"""Taking token files apart and putting them back together, to damage them on purpose."""

from __future__ import annotations

import base64

from asn1crypto import cms

HEADERS = (
    b'Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data\n'
    b"Content-Transfer-Encoding: base64\n"
    b'Content-Disposition: attachment; filename="smime.p7m"\n'
    b"Content-Description: S/MIME Encrypted Message\n\n"
)


def cms_bytes(token_file: bytes) -> bytes:
    """The CMS inside a MIME + base64 token file."""
    body = token_file.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1]
    return base64.b64decode(b"".join(body.split()))


def wrap(der: bytes) -> bytes:
    """A token file as ABM/ASM writes one: MIME headers, then base64 in 76-column lines."""
    text = base64.b64encode(der)
    return HEADERS + b"\n".join(text[i : i + 76] for i in range(0, len(text), 76)) + b"\n"


def with_encrypted_key(token_file: bytes, encrypted_key: bytes, *, recipient: int = 0) -> bytes:
    """The same token file with one recipient's wrapped content key replaced."""
    info = cms.ContentInfo.load(cms_bytes(token_file))
    ktri = info["content"]["recipient_infos"][recipient].chosen
    ktri["encrypted_key"] = cms.OctetString(encrypted_key)
    return wrap(info.dump(force=True))


def with_ciphertext(token_file: bytes, ciphertext: bytes) -> bytes:
    info = cms.ContentInfo.load(cms_bytes(token_file))
    info["content"]["encrypted_content_info"]["encrypted_content"] = ciphertext
    return wrap(info.dump(force=True))


def ciphertext_of(token_file: bytes) -> bytes:
    info = cms.ContentInfo.load(cms_bytes(token_file))
    value = info["content"]["encrypted_content_info"]["encrypted_content"].native
    assert isinstance(value, bytes)
    return value


def encrypted_key(token_file: bytes, *, recipient: int = 0) -> bytes:
    info = cms.ContentInfo.load(cms_bytes(token_file))
    value = info["content"]["recipient_infos"][recipient].chosen["encrypted_key"].native
    assert isinstance(value, bytes)
    return value
