"""Local HTTPS servers on 127.0.0.1 for the probe tests, with certificates made by
``cryptography``: a CA and a leaf it issued, and a self-signed certificate."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Identity:
    """A certificate (PEM and DER) and its private key (PEM)."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def der_base64(self) -> str:
        """As a profile's ``anchor_certs`` carries it."""
        cert = x509.load_pem_x509_certificate(self.cert_pem)
        return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _build(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    server: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer if issuer else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _identity(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Identity:
    return Identity(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@dataclass(frozen=True)
class Certificates:
    ca: Identity
    leaf: Identity  # issued by ``ca`` for 127.0.0.1
    self_signed: Identity  # for 127.0.0.1, issued by itself


def make_certificates() -> Certificates:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _build("adesync test CA", ca_key, None, ca=True, server=False)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = _build("127.0.0.1", leaf_key, (ca_cert.subject, ca_key), ca=False, server=True)
    own_key = ec.generate_private_key(ec.SECP256R1())
    own_cert = _build("127.0.0.1", own_key, None, ca=True, server=True)
    return Certificates(
        ca=_identity(ca_cert, ca_key),
        leaf=_identity(leaf_cert, leaf_key),
        self_signed=_identity(own_cert, own_key),
    )


def server_context(identity: Identity) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        cert.write_bytes(identity.cert_pem)
        key.write_bytes(identity.key_pem)
        context.load_cert_chain(cert, key)
    return context


Answer = Callable[[bytes], Awaitable[bytes]]


def status(code: int, headers: str = "") -> Answer:
    """Answer every request with ``code`` (and extra header lines)."""

    async def answer(_request: bytes) -> bytes:
        return (
            f"HTTP/1.1 {code} Test\r\nContent-Length: 2\r\nConnection: close\r\n{headers}\r\nok"
        ).encode()

    return answer


def never() -> Answer:
    """Read the request and never answer (a hung server)."""

    async def answer(_request: bytes) -> bytes:
        await asyncio.Event().wait()
        return b""

    return answer


@dataclass
class Server:
    url: str
    requests: list[bytes]


@asynccontextmanager
async def https_server(identity: Identity | None, answer: Answer) -> AsyncIterator[Server]:
    """An HTTP(S) server on 127.0.0.1 (plain HTTP when ``identity`` is None) that answers with
    ``answer``; every request it read is in ``requests``."""
    requests: list[bytes] = []
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            requests.append(request)
            writer.write(await answer(request))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            handlers.discard(task)

    context = server_context(identity) if identity is not None else None
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    scheme = "https" if identity is not None else "http"
    try:
        yield Server(f"{scheme}://127.0.0.1:{port}/mdm/enroll", requests)
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def closed_port_url() -> str:
    """An https URL on 127.0.0.1 where nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"https://127.0.0.1:{port}/mdm/enroll"
