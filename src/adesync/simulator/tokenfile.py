"""The ABM "Download Token" step: OAuth values encrypted to the MDM server's certificate.

The file is what Apple Business Manager hands out (reference §1.3): S/MIME headers and a
base64 body of CMS EnvelopedData (AES-128-CBC, RSA key transport) whose plaintext is a MIME
text part holding the token JSON between ``-----BEGIN MESSAGE-----`` markers. The CMS is DER
(cryptography writes DER); Apple's own sample is BER, which matters only to a decoder.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7

__all__ = ["load_certificate", "token_filename", "token_p7m"]

_OUTER_HEADERS = (
    'Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data\n'
    "Content-Transfer-Encoding: base64\n"
    'Content-Disposition: attachment; filename="smime.p7m"\n'
    "Content-Description: S/MIME Encrypted Message\n"
    "\n"
)


def load_certificate(pem: str | bytes) -> x509.Certificate:
    """Parse the PEM certificate an admin uploads; ``ValueError`` with one sentence if unusable."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ValueError("certificate_pem is not a PEM-encoded X.509 certificate.") from None
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise ValueError("certificate_pem must hold an RSA public key, as ABM requires.")
    return certificate


def _plaintext(payload: dict[str, Any]) -> bytes:
    # MIME text part, CRLF line ends as S/MIME canonical text has them.
    return (
        "Content-Type: text/plain;charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 7bit\r\n"
        "\r\n"
        "-----BEGIN MESSAGE-----\r\n"
        f"{json.dumps(payload, separators=(',', ':'))}\r\n"
        "-----END MESSAGE-----\r\n"
    ).encode()


def token_p7m(payload: dict[str, Any], certificate: x509.Certificate) -> bytes:
    """The ``_smime.p7m`` file content for ``payload``, encrypted to ``certificate``."""
    envelope = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(_plaintext(payload))
        .add_recipient(certificate)
        .set_content_encryption_algorithm(algorithms.AES128)
        .encrypt(serialization.Encoding.DER, [])
    )
    encoded = base64.b64encode(envelope).decode()
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    return (_OUTER_HEADERS + "\n".join(lines) + "\n").encode()


def token_filename(server_name: str, issued: str) -> str:
    """ABM's file name: ``<ServerName>_Token_<YYYY-MM-DDTHH-MM-SSZ>_smime.p7m``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in server_name) or "server"
    return f"{safe}_Token_{issued.replace(':', '-')}_smime.p7m"
