"""``adesync tokens add/renew`` ask Apple's /account (here: the simulator over loopback HTTP).

The whole ABM round trip runs for real: ``tokens keypair`` writes a certificate, the simulator's
"create MDM server" takes it and hands back the encrypted ``.p7m``, and ``tokens add --dep-url``
decrypts it, signs in to the simulator with OAuth and stores what ``/account`` says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adesync.simulator import Simulator, run_in_thread
from tests.cli_runner import Result, invoke
from tests.conftest import Home


@dataclass
class Apple:
    """A simulator served on 127.0.0.1, driven through its admin API like ABM."""

    sim: Simulator
    base_url: str

    def create_server(self, certificate: Path, name: str = "Acme MDM") -> tuple[str, bytes]:
        response = httpx.post(
            f"{self.base_url}/_sim/servers",
            params={"format": "p7m", "name": name, "admin_id": "ade.admin@acme.example"},
            content=certificate.read_bytes(),
        )
        assert response.status_code == 201, response.text
        return response.headers["X-Server-UUID"], response.content

    def download_token(self, server_uuid: str, certificate: Path) -> bytes:
        response = httpx.post(
            f"{self.base_url}/_sim/servers/{server_uuid}/token",
            params={"format": "p7m"},
            content=certificate.read_bytes(),
        )
        assert response.status_code == 201, response.text
        return response.content


@pytest.fixture
def apple() -> Iterator[Apple]:
    sim = Simulator(devices=5, seed=3)
    base_url, stop = run_in_thread(sim)
    try:
        yield Apple(sim, base_url)
    finally:
        stop()


def _keypair(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> Path:
    cert = tmp_path / f"{name}.pem"
    made = invoke(capsys, "tokens", "keypair", name, "--out", str(cert))
    assert made.code == 0, made.err
    return cert


def _p7m(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / f"{name}_Token_smime.p7m"
    path.write_bytes(data)
    return path


def _show(capsys: pytest.CaptureFixture[str], name: str) -> dict[str, object]:
    shown = invoke(capsys, "tokens", "show", name, "--json")
    assert shown.code == 0, shown.err
    document = json.loads(shown.out)
    assert isinstance(document, dict)
    return document


def _refusal(result: Result) -> str:
    assert result.code != 0
    assert "Traceback" not in result.err
    text = " ".join(result.err.split())
    assert text.startswith("error: ")
    return text


def test_add_validates_against_the_simulator_and_stores_apples_identity(
    home: Home, apple: Apple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = _keypair(capsys, tmp_path, "acme")
    server_uuid, p7m = apple.create_server(cert)
    added = invoke(
        capsys, "tokens", "add", "acme", "--p7m", str(_p7m(tmp_path, "acme", p7m)),
        "--dep-url", apple.base_url,
    )  # fmt: skip
    assert added.code == 0, added.err
    assert "Example Organisation" in added.out
    assert "unverified" not in added.err
    doc = _show(capsys, "acme")
    assert doc["server_uuid"] == server_uuid
    assert doc["server_name"] == "Acme MDM"
    assert doc["org_name"] == "Example Organisation"
    assert doc["admin_id"] == "ade.admin@acme.example"
    assert doc["org_type"] == "org"
    assert doc["identity_verified_at"] is not None
    assert doc["dep_url"] == apple.base_url
    assert len(apple.sim.sessions) == 1  # it really signed in


def test_a_second_token_for_the_same_server_needs_force(
    home: Home, apple: Apple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = _keypair(capsys, tmp_path, "acme")
    server_uuid, p7m = apple.create_server(cert)
    first = _p7m(tmp_path, "acme", p7m)
    assert invoke(capsys, "tokens", "add", "acme", "--p7m", str(first), "--dep-url",
                  apple.base_url).code == 0  # fmt: skip

    other_cert = _keypair(capsys, tmp_path, "acme-copy")
    second = _p7m(tmp_path, "copy", apple.download_token(server_uuid, other_cert))
    args = ("tokens", "add", "acme-copy", "--p7m", str(second), "--dep-url", apple.base_url)
    refused = invoke(capsys, *args)
    message = _refusal(refused)
    assert "acme" in message and server_uuid in message and "--force" in message
    assert _show(capsys, "acme-copy")["status"] == "waiting_for_p7m"  # nothing stored

    forced = invoke(capsys, *args, "--force")
    assert forced.code == 0, forced.err
    assert "duplicate_server" in forced.err
    assert _show(capsys, "acme-copy")["server_uuid"] == server_uuid


def test_unaccepted_terms_refuse_the_token_and_store_nothing(
    home: Home, apple: Apple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = _keypair(capsys, tmp_path, "acme")
    server_uuid, p7m = apple.create_server(cert)
    apple.sim.set_terms_pending(apple.sim.server(server_uuid).org.org_id)
    path = _p7m(tmp_path, "acme", p7m)
    refused = invoke(capsys, "tokens", "add", "acme", "--p7m", str(path), "--dep-url",
                     apple.base_url)  # fmt: skip
    message = _refusal(refused)
    assert "not accepted the latest" in message and "accept them" in message
    assert _show(capsys, "acme")["status"] == "waiting_for_p7m"

    apple.sim.set_terms_pending(apple.sim.server(server_uuid).org.org_id, False)
    again = invoke(capsys, "tokens", "add", "acme", "--p7m", str(path), "--dep-url",
                   apple.base_url)  # fmt: skip
    assert again.code == 0, again.err


def test_a_revoked_token_is_refused_as_rejected(
    home: Home, apple: Apple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = _keypair(capsys, tmp_path, "acme")
    server_uuid, p7m = apple.create_server(cert)
    apple.sim.revoke_token(server_uuid)
    refused = invoke(capsys, "tokens", "add", "acme", "--p7m", str(_p7m(tmp_path, "a", p7m)),
                     "--dep-url", apple.base_url)  # fmt: skip
    message = _refusal(refused)
    assert "rejected this token" in message and "most recent token" in message


def test_a_deleted_server_is_refused_as_access_denied(
    home: Home, apple: Apple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = _keypair(capsys, tmp_path, "acme")
    server_uuid, p7m = apple.create_server(cert)
    apple.sim.delete_server(server_uuid)
    refused = invoke(capsys, "tokens", "add", "acme", "--p7m", str(_p7m(tmp_path, "a", p7m)),
                     "--dep-url", apple.base_url)  # fmt: skip
    assert "denied access" in _refusal(refused)


def test_renew_validates_the_new_token_and_refreshes_the_identity(
    home: Home, apple: Apple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = _keypair(capsys, tmp_path, "acme")
    server_uuid, p7m = apple.create_server(cert)
    assert invoke(capsys, "tokens", "add", "acme", "--p7m", str(_p7m(tmp_path, "a", p7m)),
                  "--dep-url", apple.base_url).code == 0  # fmt: skip
    verified = _show(capsys, "acme")["identity_verified_at"]

    apple.sim.server(server_uuid).name = "Acme MDM (renamed)"
    renewal = _p7m(tmp_path, "renewal", apple.download_token(server_uuid, cert))
    renewed = invoke(capsys, "tokens", "renew", "acme", "--p7m", str(renewal))
    assert renewed.code == 0, renewed.err
    doc = _show(capsys, "acme")
    assert doc["server_name"] == "Acme MDM (renamed)"
    assert doc["identity_verified_at"] is not None and doc["identity_verified_at"] >= verified

    # The renewal superseded the first token: Apple now rejects it, and renew says so.
    apple.sim.revoke_token(server_uuid)
    newest = _p7m(tmp_path, "newest", apple.download_token(server_uuid, cert))
    apple.sim.revoke_token(server_uuid)
    refused = invoke(capsys, "tokens", "renew", "acme", "--p7m", str(newest))
    assert "rejected this token" in _refusal(refused)
    assert _show(capsys, "acme")["server_name"] == "Acme MDM (renamed)"
