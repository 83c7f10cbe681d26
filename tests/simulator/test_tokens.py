"""ABM's "Download Token" step: a real S/MIME ``.p7m`` encrypted to the uploaded certificate."""

from __future__ import annotations

import base64
import email
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import pkcs7

from tests.sim_fixtures import RunningSimulator, SimAdminError, SimKeyPair, make_keypair

FOUR = ("consumer_key", "consumer_secret", "access_token", "access_secret")


def _decrypt(p7m: bytes, keypair: SimKeyPair) -> bytes:
    message = email.message_from_bytes(p7m)
    assert message.get_content_type() == "application/pkcs7-mime"
    der = base64.b64decode(message.get_payload())
    return pkcs7.pkcs7_decrypt_der(der, keypair.certificate, keypair.key, [])


def _token_json(plaintext: bytes) -> dict[str, str]:
    _, _, body = plaintext.decode().partition("\r\n\r\n")
    lines = body.strip().splitlines()
    assert lines[0] == "-----BEGIN MESSAGE-----" and lines[-1] == "-----END MESSAGE-----"
    return dict(json.loads("".join(lines[1:-1])))


def test_created_server_gives_a_p7m_that_decrypts_to_its_credentials(
    simulator: RunningSimulator, sim_keypair: SimKeyPair
) -> None:
    server = simulator.create_server("Main MDM")
    assert server.p7m is not None
    outer = server.p7m.decode()
    assert outer.startswith(
        'Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data\n'
        "Content-Transfer-Encoding: base64\n"
        'Content-Disposition: attachment; filename="smime.p7m"\n'
        "Content-Description: S/MIME Encrypted Message\n\n"
    )
    body_lines = outer.split("\n\n", 1)[1].strip().split("\n")
    assert all(len(line) <= 76 for line in body_lines) and len(body_lines[0]) == 76

    plaintext = _decrypt(server.p7m, sim_keypair)
    assert plaintext.startswith(
        b"Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
    )
    token = _token_json(plaintext)
    assert {k: token[k] for k in FOUR} == {k: server.credentials[k] for k in FOUR}
    assert token["consumer_key"].startswith("CK_") and token["access_secret"].startswith("AS_")
    expiry = datetime.fromisoformat(token["access_token_expiry"].replace("Z", "+00:00"))
    one_year = datetime.fromtimestamp(simulator.now(), UTC) + timedelta(days=365)
    assert abs((expiry - one_year).total_seconds()) < 5
    assert server.filename.startswith("Main_MDM_Token_") and server.filename.endswith("_smime.p7m")
    assert len(server.uuid) == 32 and server.uuid == server.uuid.upper()


def test_openssl_decrypts_the_token_file(
    simulator: RunningSimulator, sim_keypair: SimKeyPair, tmp_path: Path
) -> None:
    server = simulator.create_server()
    assert server.p7m is not None
    path, cert, key = (tmp_path / n for n in ("t.p7m", "cert.pem", "key.pem"))
    path.write_bytes(server.p7m)
    cert.write_text(sim_keypair.certificate_pem)
    key.write_text(sim_keypair.key_pem)
    result = subprocess.run(
        ["openssl", "smime", "-decrypt", "-in", str(path), "-recip", str(cert), "-inkey", str(key)],
        capture_output=True,
        check=True,
    )
    assert _token_json(result.stdout)["access_token"] == server.credentials["access_token"]


def test_token_expiry_is_settable(simulator: RunningSimulator, sim_keypair: SimKeyPair) -> None:
    server = simulator.create_server(token_expiry="2030-01-02T03:04:05Z")
    assert server.p7m is not None
    assert _token_json(_decrypt(server.p7m, sim_keypair))["access_token_expiry"] == (
        "2030-01-02T03:04:05Z"
    )


def test_a_new_download_invalidates_the_previous_token(
    simulator: RunningSimulator, sim_keypair: SimKeyPair
) -> None:
    server = simulator.create_server()
    old = dict(server.credentials)
    answer = simulator.admin.download_token(server.uuid)
    new = _token_json(_decrypt(base64.b64decode(answer["token_p7m"]), sim_keypair))
    assert new["access_token"] != old["access_token"]
    assert new["consumer_key"] == old["consumer_key"]  # the consumer key stays with the server

    refused = simulator.session_response(old)
    assert (refused.status_code, refused.text) == (401, '"token_rejected"')
    assert simulator.session_response(new).status_code == 200


def test_a_new_certificate_can_come_with_the_new_token(simulator: RunningSimulator) -> None:
    server = simulator.create_server()
    other = make_keypair("renewed")
    answer = simulator.admin.download_token(server.uuid, certificate_pem=other.certificate_pem)
    token = _token_json(_decrypt(base64.b64decode(answer["token_p7m"]), other))
    assert token["access_token"] == simulator.admin.credentials(server.uuid)["access_token"]


def test_pem_upload_answers_the_p7m_file_itself(
    simulator: RunningSimulator, sim_keypair: SimKeyPair
) -> None:
    response = httpx.post(
        f"{simulator.base_url}/_sim/servers",
        params={"name": "curl server", "format": "p7m", "devices": "3"},
        content=sim_keypair.certificate_pem.encode(),
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/pkcs7-mime"
    server_uuid = response.headers["x-server-uuid"]
    token = _token_json(_decrypt(response.content, sim_keypair))
    credentials = simulator.admin.credentials(server_uuid)
    assert {k: credentials[k] for k in FOUR} == {k: token[k] for k in FOUR}
    assert simulator.admin.state()["servers"][0]["device_count"] == 3


def test_a_bad_certificate_is_refused_and_creates_nothing(simulator: RunningSimulator) -> None:
    with pytest.raises(SimAdminError) as refused:
        simulator.admin.create_server(name="x", certificate_pem="not a certificate")
    assert refused.value.status == 400
    assert refused.value.message == "certificate_pem is not a PEM-encoded X.509 certificate."
    assert simulator.admin.state()["servers"] == []


def test_a_server_without_certificate_still_has_credentials(simulator: RunningSimulator) -> None:
    server = simulator.create_server(with_certificate=False)
    assert server.p7m is None
    assert simulator.session_response(server).status_code == 200
    with pytest.raises(SimAdminError) as refused:
        simulator.admin.download_token(server.uuid)
    assert refused.value.status == 409
