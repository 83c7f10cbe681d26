"""Reusable pytest fixtures: a simulator of Apple's ADE service on a loopback port.

Use them from any test module or conftest::

    from tests.sim_fixtures import sim_keypair, simulator  # noqa: F401  (pytest fixtures)

    def test_something(simulator):
        server = simulator.create_server("MDM", devices=30)   # real .p7m in server.p7m
        token = simulator.session_token(server)                 # a signed GET /session
        client = simulator.client(session=token)                # httpx.Client with headers set
        page = client.post("/server/devices", json={"limit": 10}).json()
        simulator.admin.set_terms_pending(server.org_id)        # every admin endpoint has a helper

``simulator.sim`` is the in-process :class:`adesync.simulator.Simulator` (same state), and
``simulator.base_url`` the URL for any client (``adesync.apple`` with ``base_url=...``).
``sim_keypair`` holds one RSA key and certificate for the whole run (key generation is slow).
"""

from __future__ import annotations

import base64
import datetime as dt
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from oauthlib.oauth1 import Client as OAuthClient

from adesync.simulator import Simulator, run_in_thread

__all__ = [
    "RunningSimulator",
    "SimAdmin",
    "SimAdminError",
    "SimKeyPair",
    "SimServer",
    "make_keypair",
    "signed_session_headers",
    "sim_keypair",
    "simulator",
]

USER_AGENT = "adesync-tests/1.0"
# Building an SSL context per httpx client costs tens of milliseconds; the simulator is plain
# HTTP on loopback, so every client shares this one.
_SSL = ssl.create_default_context()


@dataclass(frozen=True)
class SimKeyPair:
    """An RSA key and the self-signed certificate an admin would upload to ABM."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()


def make_keypair(common_name: str = "adesync-test") -> SimKeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(minutes=10))
        .not_valid_after(now + dt.timedelta(days=365 * 5))
        .sign(key, hashes.SHA256())
    )
    return SimKeyPair(key, certificate)


class SimAdminError(Exception):
    """The admin API refused a request: ``status`` and its one-sentence ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass
class SimServer:
    """A server created through the admin API, with what "Download Token" gave."""

    uuid: str
    org_id: str
    p7m: bytes | None
    filename: str
    credentials: dict[str, str] = field(default_factory=dict)


def signed_session_headers(
    base_url: str,
    credentials: dict[str, str],
    *,
    realm: str | None = "ADM",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The ``Authorization`` header of a ``GET /session`` signed with oauthlib (HMAC-SHA1)."""
    client = OAuthClient(
        credentials["consumer_key"],
        client_secret=credentials["consumer_secret"],
        resource_owner_key=credentials["access_token"],
        resource_owner_secret=credentials["access_secret"],
        realm=realm,
        timestamp=None if timestamp is None else str(timestamp),
        nonce=nonce or uuid.uuid4().hex,
    )
    _, headers, _ = client.sign(f"{base_url}/session", "GET")
    return dict(headers)


class SimAdmin:
    """Typed helpers over the ``/_sim`` admin API (real HTTP)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=f"{base_url}/_sim", timeout=30, verify=_SSL)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.http.request(method, path, json=body, params=params or None)
        if response.status_code >= 400:
            raise SimAdminError(response.status_code, response.json().get("error", response.text))
        return None if response.status_code == 204 else response.json()

    def state(self) -> dict[str, Any]:
        return dict(self.call("GET", "/state"))

    def create_org(self, name: str, **fields: Any) -> dict[str, Any]:
        return dict(self.call("POST", "/orgs", {"name": name, **fields}))

    def set_terms_pending(self, org_id: str, pending: bool = True) -> None:
        self.call("PUT", f"/orgs/{org_id}/terms", {"pending": pending})

    def create_server(self, **fields: Any) -> dict[str, Any]:
        return dict(self.call("POST", "/servers", fields))

    def download_token(self, server_uuid: str, **fields: Any) -> dict[str, Any]:
        return dict(self.call("POST", f"/servers/{server_uuid}/token", fields))

    def credentials(self, server_uuid: str) -> dict[str, str]:
        return dict(self.call("GET", f"/servers/{server_uuid}/credentials"))

    def revoke(self, server_uuid: str) -> None:
        self.call("POST", f"/servers/{server_uuid}/revoke")

    def delete_server(self, server_uuid: str) -> None:
        self.call("DELETE", f"/servers/{server_uuid}")

    def devices(self, server_uuid: str, offset: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/servers/{server_uuid}/devices", offset=offset, limit=limit))

    def device(self, server_uuid: str, serial: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/servers/{server_uuid}/devices/{serial}"))

    def serials(self, server_uuid: str, count: int, offset: int = 0) -> list[str]:
        return [d["serial_number"] for d in self.devices(server_uuid, offset, count)]

    def add_devices(
        self, server_uuid: str, count: int = 0, devices: list[dict[str, Any]] | None = None
    ) -> list[str]:
        body: dict[str, Any] = {"count": count}
        if devices is not None:
            body["devices"] = devices
        return list(self.call("POST", f"/servers/{server_uuid}/devices", body)["serials"])

    def modify_devices(self, server_uuid: str, changes: list[dict[str, Any]]) -> list[str]:
        body = {"devices": changes}
        return list(self.call("PATCH", f"/servers/{server_uuid}/devices", body)["serials"])

    def move_devices(
        self,
        serials: list[str],
        to_server: str,
        *,
        op_type: str = "added",
        from_server: str | None = None,
    ) -> list[str]:
        body: dict[str, Any] = {"serials": serials, "to_server": to_server, "op_type": op_type}
        if from_server is not None:
            body["from_server"] = from_server
        return list(self.call("POST", "/devices/move", body)["serials"])

    def mark_pushed(self, server_uuid: str, serials: list[str]) -> list[str]:
        body = {"serials": serials}
        return list(self.call("POST", f"/servers/{server_uuid}/devices/pushed", body)["serials"])

    def throttle_serials(self, server_uuid: str, serials: list[str], retry_after: int) -> None:
        body = {"serials": serials, "retry_after_seconds": retry_after}
        self.call("POST", f"/servers/{server_uuid}/devices/throttle", body)

    def fail_serials(self, server_uuid: str, serials: list[str], times: int = 1) -> None:
        body = {"serials": serials, "times": times}
        self.call("POST", f"/servers/{server_uuid}/devices/fail", body)

    def expire_cursors(self, server_uuid: str, cursor: str | None = None) -> None:
        self.call("POST", f"/servers/{server_uuid}/cursors/expire", {"cursor": cursor})

    def profiles(self, server_uuid: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/servers/{server_uuid}/profiles"))

    def faults(self, server_uuid: str | None = None, **faults: Any) -> dict[str, Any]:
        """Set faults: ``scripts={...}``, ``outage={...}|None``, ``throttle=...``, ``delay_ms``."""
        body = dict(faults)
        if server_uuid is not None:
            body["server_uuid"] = server_uuid
        return dict(self.call("POST", "/faults", body))

    def script(
        self, endpoint: str, *entries: tuple[int, str], server_uuid: str | None = None
    ) -> None:
        """Script an endpoint: ``script("session", (1, "forbidden_t_c_not_signed"))``."""
        scripts = {endpoint: [{"count": count, "response": name} for count, name in entries]}
        self.faults(server_uuid, scripts=scripts)

    def clear_faults(self, server_uuid: str | None = None) -> None:
        if server_uuid is None:
            self.call("DELETE", "/faults")
        else:
            self.call("DELETE", "/faults", server_uuid=server_uuid)

    def settings(self, **changes: Any) -> dict[str, Any]:
        if not changes:
            return dict(self.call("GET", "/settings"))
        return dict(self.call("PATCH", "/settings", changes))

    def expire_sessions(self) -> None:
        self.call("POST", "/sessions/expire")


@dataclass
class RunningSimulator:
    """A simulator served on 127.0.0.1 for one test."""

    base_url: str
    sim: Simulator
    admin: SimAdmin
    keypair: SimKeyPair

    def create_server(
        self, name: str = "Test MDM", *, with_certificate: bool = True, **fields: Any
    ) -> SimServer:
        """Create a server (``devices=``, ``org_id=``, ``admin_id=``, ``token_expiry=``...)."""
        if with_certificate:
            fields["certificate_pem"] = self.keypair.certificate_pem
        answer = self.admin.create_server(name=name, **fields)
        p7m = answer["token_p7m"]
        return SimServer(
            uuid=answer["server_uuid"],
            org_id=answer["org_id"],
            p7m=None if p7m is None else base64.b64decode(p7m),
            filename=answer["filename"],
            credentials=self.admin.credentials(answer["server_uuid"]),
        )

    def refresh(self, server: SimServer) -> SimServer:
        """Re-read the server's current credentials (after a new token download)."""
        server.credentials = self.admin.credentials(server.uuid)
        return server

    def client(
        self, *, session: str | None = None, version: int | None = 10, user_agent: str = USER_AGENT
    ) -> httpx.Client:
        """An httpx client for Apple's paths; closed by the fixture at the end of the test."""
        headers = {"User-Agent": user_agent}
        if version is not None:
            headers["X-Server-Protocol-Version"] = str(version)
        if session is not None:
            headers["X-ADM-Auth-Session"] = session
        client = httpx.Client(base_url=self.base_url, headers=headers, timeout=30, verify=_SSL)
        self._clients.append(client)
        return client

    def session_response(
        self, server: SimServer | dict[str, str], **signing: Any
    ) -> httpx.Response:
        """The answer to a signed ``GET /session`` (see ``signed_session_headers``)."""
        credentials = server.credentials if isinstance(server, SimServer) else server
        headers = signed_session_headers(self.base_url, credentials, **signing)
        return self.client().get("/session", headers=headers)

    def session_token(self, server: SimServer | dict[str, str], **signing: Any) -> str:
        response = self.session_response(server, **signing)
        assert response.status_code == 200, response.text
        return str(response.json()["auth_session_token"])

    def apple(self, server: SimServer, *, version: int | None = 10) -> httpx.Client:
        """A client already holding a session for ``server``."""
        return self.client(session=self.session_token(server), version=version)

    def now(self) -> int:
        return int(self.sim.now())

    _clients: list[httpx.Client] = field(default_factory=list)


@pytest.fixture(scope="session")
def sim_keypair() -> SimKeyPair:
    """One RSA key pair and certificate for the whole test run."""
    return make_keypair()


@pytest.fixture
def simulator(sim_keypair: SimKeyPair) -> Iterator[RunningSimulator]:
    """A fresh simulator (25 devices per new server, seed 1) on a loopback port."""
    sim = Simulator(devices=25, seed=1)
    base_url, stop = run_in_thread(sim)
    running = RunningSimulator(base_url, sim, SimAdmin(base_url), sim_keypair)
    try:
        yield running
    finally:
        for client in running._clients:
            client.close()
        running.admin.close()
        stop()
