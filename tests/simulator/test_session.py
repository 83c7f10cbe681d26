"""``GET /session`` (OAuth 1.0a HMAC-SHA1) and the life of ``X-ADM-Auth-Session`` tokens."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import pytest

from tests.sim_fixtures import RunningSimulator, SimServer, signed_session_headers

TEXT = "text/plain;charset=UTF8"


@pytest.fixture
def server(simulator: RunningSimulator) -> SimServer:
    return simulator.create_server(devices=5)


@pytest.mark.parametrize("realm", ["ADM", None])
def test_a_correctly_signed_request_opens_a_session(
    simulator: RunningSimulator, server: SimServer, realm: str | None
) -> None:
    response = simulator.session_response(server, realm=realm)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json;charset=UTF8"
    assert list(response.json()) == ["auth_session_token"]
    token = response.json()["auth_session_token"]
    account = simulator.client(session=token).get("/account")
    assert account.status_code == 200 and account.json()["server_uuid"] == server.uuid


def _expect(response: object, status: int, body: str) -> None:
    assert (response.status_code, response.text) == (status, body)  # type: ignore[attr-defined]
    assert response.headers["content-type"] == TEXT  # type: ignore[attr-defined]


def test_a_wrong_signature_is_refused(simulator: RunningSimulator, server: SimServer) -> None:
    forged = {**server.credentials, "access_secret": "AS_wrong"}
    _expect(simulator.session_response(forged), 401, '"signature_invalid"')


def test_a_signature_for_another_url_is_refused(
    simulator: RunningSimulator, server: SimServer
) -> None:
    headers = signed_session_headers("http://mdmenrollment.apple.com", server.credentials)
    _expect(simulator.client().get("/session", headers=headers), 401, '"signature_invalid"')


def test_unknown_token_and_wrong_consumer_key_are_refused(
    simulator: RunningSimulator, server: SimServer
) -> None:
    unknown = {**server.credentials, "access_token": "AT_O1O00"}
    _expect(simulator.session_response(unknown), 401, '"token_rejected"')
    other_consumer = {**server.credentials, "consumer_key": "CK_other"}
    _expect(simulator.session_response(other_consumer), 401, '"consumer_key_rejected"')


def test_a_reused_nonce_is_refused(simulator: RunningSimulator, server: SimServer) -> None:
    timestamp = simulator.now()
    first = simulator.session_response(server, nonce="same-nonce", timestamp=timestamp)
    assert first.status_code == 200
    again = simulator.session_response(server, nonce="same-nonce", timestamp=timestamp)
    _expect(again, 401, '"nonce_used"')


def test_a_timestamp_outside_five_minutes_is_refused(
    simulator: RunningSimulator, server: SimServer
) -> None:
    late = simulator.session_response(server, timestamp=simulator.now() - 301)
    _expect(late, 401, '"timestamp_refused"')
    early = simulator.session_response(server, timestamp=simulator.now() + 400)
    _expect(early, 401, '"timestamp_refused"')
    assert simulator.session_response(server, timestamp=simulator.now() - 200).status_code == 200


def test_a_clock_offset_shifts_the_window_and_the_date_header(
    simulator: RunningSimulator, server: SimServer
) -> None:
    simulator.admin.settings(clock_offset_seconds=3600)
    refused = simulator.session_response(server)  # signed with the real time
    _expect(refused, 401, '"timestamp_refused"')
    served_at = parsedate_to_datetime(refused.headers["date"]).timestamp()
    assert served_at - (simulator.now() - 3600) > 3500
    # A client whose clock agrees with the (skewed) service gets in.
    assert simulator.session_response(server, timestamp=simulator.now()).status_code == 200


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (
            lambda h: {"Authorization": h["Authorization"].replace("HMAC-SHA1", "PLAINTEXT")},
            "signature_method_rejected",
        ),
        (
            lambda h: {"Authorization": h["Authorization"].replace("oauth_nonce", "x_nonce")},
            "parameter_absent",
        ),
        (
            lambda h: {"Authorization": h["Authorization"] + ', oauth_nonce="twice"'},
            "parameter_rejected",
        ),
        (lambda h: {}, "parameter_absent"),
    ],
    ids=["signature-method", "missing-parameter", "duplicate-parameter", "no-header"],
)
def test_malformed_oauth_requests_get_400(
    simulator: RunningSimulator, server: SimServer, mutate: object, code: str
) -> None:
    headers = signed_session_headers(simulator.base_url, server.credentials)
    response = simulator.client().get("/session", headers=mutate(headers))  # type: ignore[operator]
    _expect(response, 400, f'"{code}"')


def test_user_agent_is_required_and_a_blocked_one_refused(
    simulator: RunningSimulator, server: SimServer
) -> None:
    headers = signed_session_headers(simulator.base_url, server.credentials)
    missing = simulator.client(user_agent="").get("/session", headers=headers)
    _expect(missing, 400, '"USER_AGENT_MISSING"')
    blocked = simulator.client(user_agent="nanodep-godep/0").get("/session", headers=headers)
    _expect(blocked, 400, '"USER_AGENT_INVALID"')
    token = simulator.session_token(server)
    _expect(
        simulator.client(session=token, user_agent="").get("/account"), 400, '"USER_AGENT_MISSING"'
    )


def test_pending_terms_answer_t_c_not_signed(
    simulator: RunningSimulator, server: SimServer
) -> None:
    token = simulator.session_token(server)
    simulator.admin.set_terms_pending(server.org_id)
    _expect(simulator.session_response(server), 403, '"T_C_NOT_SIGNED"')
    _expect(simulator.client(session=token).get("/account"), 403, '"T_C_NOT_SIGNED"')
    other_org = simulator.admin.create_org("Other Org")
    other = simulator.create_server(org_id=other_org["org_id"])
    assert simulator.session_response(other).status_code == 200
    simulator.admin.set_terms_pending(server.org_id, False)
    assert simulator.client(session=token).get("/account").status_code == 200


def test_a_revoked_token_is_rejected(simulator: RunningSimulator, server: SimServer) -> None:
    token = simulator.session_token(server)
    simulator.admin.revoke(server.uuid)
    _expect(simulator.session_response(server), 401, '"token_rejected"')
    _expect(simulator.client(session=token).get("/account"), 403, '"token_rejected"')


def test_an_expired_token_is_rejected(simulator: RunningSimulator) -> None:
    server = simulator.create_server(token_expiry="2001-01-01T00:00:00Z")
    _expect(simulator.session_response(server), 401, '"token_rejected"')


def test_a_deleted_server_answers_access_denied(
    simulator: RunningSimulator, server: SimServer
) -> None:
    token = simulator.session_token(server)
    simulator.admin.delete_server(server.uuid)
    _expect(simulator.session_response(server), 403, '"ACCESS_DENIED"')
    _expect(simulator.client(session=token).get("/account"), 403, '"ACCESS_DENIED"')


def test_an_idle_session_expires_with_www_authenticate(
    simulator: RunningSimulator, server: SimServer
) -> None:
    simulator.admin.settings(session_idle_seconds=60)
    client = simulator.apple(server)
    assert client.get("/account").status_code == 200
    simulator.admin.settings(clock_offset_seconds=61)
    expired = client.get("/account")
    _expect(expired, 401, '"UNAUTHORIZED"')
    assert expired.headers["www-authenticate"] == "ADM-Auth-Token"
    _expect(client.get("/account"), 403, '"FORBIDDEN"')  # forgotten once expired


def test_unknown_and_missing_session_tokens(simulator: RunningSimulator) -> None:
    _expect(simulator.client(session="0" * 128).get("/account"), 403, '"FORBIDDEN"')
    missing = simulator.client().get("/account")
    _expect(missing, 401, '"UNAUTHORIZED"')
    assert missing.headers["www-authenticate"] == "ADM-Auth-Token"


def test_a_restart_forgets_sessions(simulator: RunningSimulator, server: SimServer) -> None:
    client = simulator.apple(server)
    simulator.admin.expire_sessions()
    _expect(client.get("/account"), 403, '"FORBIDDEN"')


def test_sessions_rotate_every_n_responses(simulator: RunningSimulator, server: SimServer) -> None:
    simulator.admin.settings(session_rotate_every=2)
    first = simulator.session_token(server)
    client = simulator.client(session=first)
    assert "x-adm-auth-session" not in client.get("/account").headers
    rotated = client.get("/account").headers["x-adm-auth-session"]
    assert rotated != first and len(rotated) == 128
    # The previous token still works (a request may be in flight), and so does the new one.
    assert client.get("/account").status_code == 200
    assert simulator.client(session=rotated).get("/account").status_code == 200


def test_rotation_can_retire_the_old_token(simulator: RunningSimulator, server: SimServer) -> None:
    simulator.admin.settings(session_rotate_every=1, session_rotation_retires_old=True)
    first = simulator.session_token(server)
    rotated = simulator.client(session=first).get("/account").headers["x-adm-auth-session"]
    _expect(simulator.client(session=first).get("/account"), 403, '"FORBIDDEN"')
    assert simulator.client(session=rotated).get("/account").status_code == 200
