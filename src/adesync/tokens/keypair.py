"""The key pair ABM/ASM encrypts a server token to: an RSA-2048 key and its certificates.

The admin uploads the PEM certificate to the MDM server in ABM/ASM; Apple encrypts every
downloaded token to it. A certificate re-issued for the same key is kept beside the earlier ones
(oldest first), so a token encrypted to any of them still decrypts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from adesync.tokens.errors import KeyPairError

KEY_SIZE = 2048
PUBLIC_EXPONENT = 65537
CERTIFICATE_VALIDITY = timedelta(days=1826)  # five years
# Backdated a little so a portal whose clock runs behind still sees a valid certificate.
BACKDATE = timedelta(minutes=10)
COMMON_NAME_LIMIT = 64  # the X.520 upper bound on a CN


def certificate_common_name(token_name: str) -> str:
    """The subject CN of a token's certificate: it names adesync and the token."""
    return f"adesync token {token_name}"[:COMMON_NAME_LIMIT]


@dataclass(frozen=True, eq=False)
class KeyPair:
    """A private key and every certificate issued for it, oldest first (never empty)."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificates: tuple[x509.Certificate, ...]

    def __post_init__(self) -> None:
        if not self.certificates:
            raise KeyPairError("A key pair needs at least one certificate.")

    @property
    def certificate(self) -> x509.Certificate:
        """The newest certificate: the one to upload to ABM/ASM."""
        return self.certificates[-1]

    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def certificates_pem(self) -> str:
        return "".join(
            cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
            for cert in self.certificates
        )

    def private_key_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted: the caller seals it before it is stored."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def with_new_certificate(self, token_name: str, *, now: datetime | None = None) -> KeyPair:
        """The same key with one more certificate (valid five years from ``now``)."""
        cert = issue_certificate(self.private_key, token_name, now=now)
        return KeyPair(self.private_key, (*self.certificates, cert))

    @classmethod
    def from_pem(cls, private_key_pem: bytes, certificates_pem: str | bytes) -> KeyPair:
        """Load a stored key pair; raises KeyPairError if it is not an RSA key with its certs."""
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError):
            raise KeyPairError("The stored private key cannot be read.") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyPairError("The stored private key is not an RSA key.")
        data = (
            certificates_pem.encode("ascii")
            if isinstance(certificates_pem, str)
            else (certificates_pem)
        )
        try:
            certs = tuple(x509.load_pem_x509_certificates(data))
        except ValueError:
            raise KeyPairError("The stored certificates cannot be read.") from None
        public = key.public_key().public_numbers()
        for cert in certs:
            cert_key = cert.public_key()
            if not (isinstance(cert_key, rsa.RSAPublicKey) and cert_key.public_numbers() == public):
                raise KeyPairError("A stored certificate does not belong to the stored key.")
        return cls(key, certs)


def issue_certificate(
    private_key: rsa.RSAPrivateKey, token_name: str, *, now: datetime | None = None
) -> x509.Certificate:
    """A self-signed SHA-256 certificate for ``private_key``, valid five years from ``now``."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, certificate_common_name(token_name))])
    public_key = private_key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CERTIFICATE_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(private_key, hashes.SHA256())
    )


def generate_keypair(token_name: str, *, now: datetime | None = None) -> KeyPair:
    """A fresh RSA-2048 key with one self-signed certificate naming adesync and the token."""
    key = rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=KEY_SIZE)
    return KeyPair(key, (issue_certificate(key, token_name, now=now),))


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as colon-separated upper-case hex (what ``openssl x509`` prints)."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def newest_expiry(certs: Iterable[x509.Certificate]) -> datetime | None:
    """The latest ``not_valid_after`` among ``certs`` (aware UTC), or None for none."""
    ends = [cert.not_valid_after_utc for cert in certs]
    return max(ends) if ends else None


__all__ = [
    "CERTIFICATE_VALIDITY",
    "KeyPair",
    "certificate_common_name",
    "fingerprint",
    "generate_keypair",
    "issue_certificate",
    "newest_expiry",
]
