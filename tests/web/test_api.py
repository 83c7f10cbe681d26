"""The REST API over real HTTP semantics (ASGI), a real database on both backends and the
Apple simulator on a loopback port: roles, validation, problem details, every route."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from adesync.web import accounts
from adesync.web.roles import Role
from tests.sim_fixtures import RunningSimulator
from tests.web.conftest import Web

API = "/api/v1"
PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["title"] and body["detail"].endswith(".")
    return body


async def add_token(web: Web, sim: RunningSimulator, name: str, devices: int = 25) -> str:
    """Create NAME through the API, make ABM's token for its certificate, upload it."""
    created = await web.client.post(
        f"{API}/tokens",
        json={"name": name, "type": "abm", "dep_url": sim.base_url},
        headers=web.as_role(Role.ADMIN),
    )
    assert created.status_code == 201, created.text
    pem = created.json()["certificate"]["certificate_pem"]
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    download = sim.sim.create_server(name, certificate_pem=pem, devices=devices)
    uploaded = await web.client.put(
        f"{API}/tokens/{name}/p7m",
        files={"p7m": ("token_smime.p7m", download.p7m, "application/pkcs7-mime")},
        headers=web.as_role(Role.ADMIN),
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["identity_verified"] is True
    return str(download.server_uuid)


ROUTES = [
    # (method, path, least role)
    ("GET", "/tokens", Role.VIEWER),
    ("POST", "/tokens", Role.ADMIN),
    ("GET", "/tokens/x", Role.VIEWER),
    ("DELETE", "/tokens/x", Role.ADMIN),
    ("PUT", "/tokens/x/p7m", Role.ADMIN),
    ("GET", "/tokens/x/certificate", Role.VIEWER),
    ("POST", "/tokens/x/certificate", Role.ADMIN),
    ("POST", "/tokens/x/sync", Role.OPERATOR),
    ("POST", "/tokens/x/check", Role.OPERATOR),
    ("PUT", "/tokens/x/default-profile", Role.ADMIN),
    ("GET", "/tokens/x/runs", Role.VIEWER),
    ("GET", "/tokens/x/findings", Role.VIEWER),
    ("GET", "/devices", Role.VIEWER),
    ("GET", "/tokens/x/devices/SERIAL", Role.VIEWER),
    ("GET", "/profiles", Role.VIEWER),
    ("POST", "/tokens/x/profiles", Role.ADMIN),
    ("GET", "/tokens/x/profiles/P", Role.VIEWER),
    ("POST", "/tokens/x/profiles/P/assign", Role.OPERATOR),
    ("POST", "/tokens/x/profiles/P/set-default", Role.ADMIN),
    ("POST", "/tokens/x/profiles/remove", Role.OPERATOR),
    ("GET", "/health", Role.VIEWER),
    ("GET", "/sync-runs", Role.VIEWER),
    ("GET", "/audit", Role.ADMIN),
    ("GET", "/me", Role.VIEWER),
    ("GET", "/users", Role.ADMIN),
    ("POST", "/users", Role.ADMIN),
    ("DELETE", "/users/x", Role.ADMIN),
    ("GET", "/api-keys", Role.ADMIN),
    ("POST", "/api-keys", Role.ADMIN),
    ("DELETE", "/api-keys/x", Role.ADMIN),
]
ORDER = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]


async def test_every_route_needs_credentials_and_the_right_role(web: Web) -> None:
    for method, path, least in ROUTES:
        anonymous = await web.client.request(method, API + path)
        assert_problem(anonymous, 401, "unauthorized")
        assert anonymous.headers["www-authenticate"] == "Bearer"
        bad_key = await web.client.request(
            method, API + path, headers={"Authorization": "Bearer ades_00000000_nope"}
        )
        assert_problem(bad_key, 401, "unauthorized")
        for role in [*ORDER[: ORDER.index(least)], Role.INGEST]:
            answer = await web.client.request(method, API + path, headers=web.as_role(role))
            body = assert_problem(answer, 403, "forbidden")
            assert least.value in body["detail"], (method, path, role)
        allowed = await web.client.request(method, API + path, headers=web.as_role(least))
        assert allowed.status_code not in (401, 403), (method, path, allowed.text)


# The enrollment feature's ingest routes (tested there); here only that they need a key.
INGEST_ROUTES = ("/webhooks/nanomdm", "/webhooks/micromdm", "/enrollment-events")


async def test_ingest_routes_refuse_console_roles(web: Web) -> None:
    for path in INGEST_ROUTES:
        assert_problem(await web.client.post(API + path), 401, "unauthorized")
        for role in ORDER[:2]:
            answer = await web.client.post(API + path, headers=web.as_role(role))
            assert answer.status_code == 403, (path, role)


def test_the_route_table_covers_the_openapi_document(web: Web) -> None:
    documented = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, item in web.app.openapi()["paths"].items()
        for method in item
        if path.removeprefix(API) not in INGEST_ROUTES
    }
    covered = {
        (method, re.sub(r"/x|/SERIAL|/P(?=/|$)", "/{}", API + path)) for method, path, _ in ROUTES
    }
    assert documented == covered


async def test_validation_errors_are_problems_naming_the_field(web: Web) -> None:
    admin = web.as_role(Role.ADMIN)
    body = assert_problem(
        await web.client.get(f"{API}/tokens?limit=0", headers=admin), 422, "validation_error"
    )
    assert body["errors"][0]["field"] == "query.limit"
    assert "limit" in body["detail"]
    assert_problem(
        await web.client.post(f"{API}/tokens", json={"name": "a b"}, headers=admin),
        400,
        "token_name_invalid",
    )
    assert_problem(
        await web.client.post(
            f"{API}/tokens", json={"name": "ok", "dep_url": "ftp://x"}, headers=admin
        ),
        400,
        "option_invalid",
    )
    assert_problem(
        await web.client.post(f"{API}/tokens", json={"name": "ok", "type": "dep"}, headers=admin),
        422,
        "validation_error",
    )
    assert_problem(
        await web.client.post(
            f"{API}/tokens",
            content=b"{not json",
            headers={**admin, "content-type": "application/json"},
        ),
        422,
        "validation_error",
    )
    # Nothing was created by any of those.
    listing = await web.client.get(f"{API}/tokens?all=true", headers=admin)
    assert listing.json() == {"items": [], "next": None}
    missing = assert_problem(
        await web.client.get(f"{API}/tokens/ghost", headers=admin), 404, "token_not_found"
    )
    assert missing["instance"] == f"{API}/tokens/ghost"


async def test_uploads_over_64_kib_are_refused(web: Web) -> None:
    answer = await web.client.put(
        f"{API}/tokens/x/p7m",
        files={"p7m": ("big.p7m", b"0" * (65 * 1024), "application/pkcs7-mime")},
        headers=web.as_role(Role.ADMIN),
    )
    assert_problem(answer, 413, "payload_too_large")


async def test_a_created_token_has_its_type_and_url_from_the_start(web: Web) -> None:
    admin = web.as_role(Role.ADMIN)
    inserted: list[str] = []

    def remember_insert(_c: object, _cur: object, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("INSERT INTO tokens"):
            inserted.append(repr(params))

    engine = web.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", remember_insert)
    try:
        created = await web.client.post(
            f"{API}/tokens",
            json={"name": "school", "type": "asm", "dep_url": " http://127.0.0.1:9/ "},
            headers=admin,
        )
    finally:
        event.remove(engine, "before_cursor_execute", remember_insert)
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert token["token_type"] == "asm" and token["dep_url"] == "http://127.0.0.1:9"
    # The row is inserted with them (in the key pair's transaction), not given them later.
    (params,) = inserted
    assert "'asm'" in params and "'http://127.0.0.1:9'" in params
    # Creating it again is a conflict and leaves its type and URL alone.
    assert_problem(
        await web.client.post(
            f"{API}/tokens",
            json={"name": "school", "type": "abm", "dep_url": "https://mdmenrollment.apple.com"},
            headers=admin,
        ),
        409,
        "token_exists",
    )
    again = (await web.client.get(f"{API}/tokens/school", headers=admin)).json()
    assert again["token_type"] == "asm" and again["dep_url"] == "http://127.0.0.1:9"
    # A URL that is not http(s) creates nothing; the sentence names the body's field.
    refused = assert_problem(
        await web.client.post(
            f"{API}/tokens", json={"name": "other", "dep_url": "ftp://x"}, headers=admin
        ),
        400,
        "option_invalid",
    )
    assert refused["detail"].startswith("dep_url 'ftp://x' is not an http(s) URL")
    assert (await web.client.get(f"{API}/tokens/other", headers=admin)).status_code == 404


async def test_token_lifecycle_through_the_api(web: Web, simulator: RunningSimulator) -> None:
    admin, operator, viewer = (web.as_role(r) for r in (Role.ADMIN, Role.OPERATOR, Role.VIEWER))
    server_uuid = await add_token(web, simulator, "acme")
    # A second create of the same name is a conflict and changes nothing.
    assert_problem(
        await web.client.post(f"{API}/tokens", json={"name": "acme"}, headers=admin),
        409,
        "token_exists",
    )
    listing = (await web.client.get(f"{API}/tokens", headers=viewer)).json()
    (item,) = listing["items"]
    assert item["name"] == "acme" and item["server_uuid"] == server_uuid
    assert item["org_name"] == "Example Organisation"
    assert item["expires_at"].endswith("Z") and item["device_count"] == 0

    synced = await web.client.post(f"{API}/tokens/acme/sync", headers=operator)
    assert synced.status_code == 200, synced.text
    assert synced.json()["outcome"] == "ok" and synced.json()["added"] == 25
    again = await web.client.post(f"{API}/tokens/acme/sync", headers=operator)
    assert_problem(again, 429, "manual_sync_throttled")
    assert 800 <= int(again.headers["retry-after"]) <= 900

    checked = await web.client.post(f"{API}/tokens/acme/check", headers=operator)
    assert checked.json()["ok"] is True

    shown = (await web.client.get(f"{API}/tokens/acme", headers=viewer)).json()
    assert shown["device_count"] == 25 and shown["keypairs"]["active"]["certificates"]
    certificate = await web.client.get(f"{API}/tokens/acme/certificate", headers=viewer)
    assert certificate.text.startswith("-----BEGIN CERTIFICATE-----")
    new_key = await web.client.post(f"{API}/tokens/acme/certificate", headers=admin)
    assert new_key.status_code == 201 and new_key.json()["slot"] == "pending"

    page = (await web.client.get(f"{API}/devices?token=acme&limit=10", headers=viewer)).json()
    assert len(page["items"]) == 10 and page["next"] is not None
    rest = (
        await web.client.get(
            f"{API}/devices?token=acme&limit=100&after={page['next']}", headers=viewer
        )
    ).json()
    assert len(rest["items"]) == 15 and rest["next"] is None
    serials = {d["serial_number"] for d in page["items"] + rest["items"]}
    assert len(serials) == 25
    serial = page["items"][0]["serial_number"]
    one = (await web.client.get(f"{API}/tokens/acme/devices/{serial}", headers=viewer)).json()
    assert one["serial_number"] == serial and isinstance(one["timeline"], list)
    part = (await web.client.get(f"{API}/devices?serial={serial[2:8]}", headers=viewer)).json()
    assert serial in {d["serial_number"] for d in part["items"]}
    assert_problem(
        await web.client.get(f"{API}/devices?profile_status=bogus", headers=viewer),
        422,
        "validation_error",
    )

    runs = (await web.client.get(f"{API}/tokens/acme/runs", headers=viewer)).json()
    assert runs[0]["outcome"] == "ok"
    counts = ("added", "modified", "deleted", "unchanged", "assigned")
    assert {c: runs[0][c] for c in counts} == {c: synced.json()[c] for c in counts}
    assert (await web.client.get(f"{API}/sync-runs?token=acme", headers=viewer)).json() == runs
    for path in ("/sync-runs?token=nope", "/tokens/nope/runs"):
        assert_problem(await web.client.get(API + path, headers=viewer), 404, "token_not_found")

    report = (await web.client.get(f"{API}/health", headers=viewer)).json()
    assert set(report) >= {"status", "alert", "findings"}
    findings = (await web.client.get(f"{API}/tokens/acme/findings", headers=viewer)).json()
    assert isinstance(findings, list)

    audit = (await web.client.get(f"{API}/audit", headers=admin)).json()["items"]
    actions = [(e["actor"], e["action"], e["target"]) for e in audit]
    assert ("apikey:key-admin", "token.create", "acme") in actions
    assert ("apikey:key-admin", "token.add", "acme") in actions
    assert ("apikey:key-operator", "token.sync", "acme") in actions

    assert (await web.client.delete(f"{API}/tokens/acme", headers=admin)).status_code == 204
    assert_problem(
        await web.client.get(f"{API}/tokens/acme", headers=viewer), 404, "token_not_found"
    )
    assert ("apikey:key-admin", "token.delete", "acme") in [
        (e["actor"], e["action"], e["target"])
        for e in (await web.client.get(f"{API}/audit", headers=admin)).json()["items"]
    ]


async def test_profiles_define_assign_and_default(web: Web, simulator: RunningSimulator) -> None:
    admin, operator, viewer = (web.as_role(r) for r in (Role.ADMIN, Role.OPERATOR, Role.VIEWER))
    await add_token(web, simulator, "school", devices=5)
    await web.client.post(f"{API}/tokens/school/sync", headers=operator)
    bad = await web.client.post(
        f"{API}/tokens/school/profiles",
        json={"profile_name": "x" * 200, "url": "https://mdm.example.com/enroll"},
        headers=admin,
    )
    body = assert_problem(bad, bad.status_code, "profile_invalid")
    assert 400 <= bad.status_code < 500 and "profile_name" in body["detail"]
    assert (await web.client.get(f"{API}/profiles", headers=viewer)).json() == []
    defined = await web.client.post(
        f"{API}/tokens/school/profiles",
        json={"profile_name": "Staff", "url": "https://mdm.example.com/enroll"},
        headers=admin,
    )
    assert defined.status_code == 201, defined.text
    uuid = defined.json()["profile_uuid"]
    got = (await web.client.get(f"{API}/tokens/school/profiles/{uuid}", headers=viewer)).json()
    assert got["profile_name"] == "Staff" and got["default"] is False
    serials = [
        d["serial_number"]
        for d in (await web.client.get(f"{API}/devices?token=school", headers=viewer)).json()[
            "items"
        ]
    ]
    assigned = await web.client.post(
        f"{API}/tokens/school/profiles/{uuid}/assign",
        json={"serials": serials[:2]},
        headers=operator,
    )
    assert assigned.json() == {"profile_uuid": uuid, "requested": 2, "accepted": 2}
    assert_problem(
        await web.client.post(
            f"{API}/tokens/school/profiles/{uuid}/assign", json={"serials": []}, headers=operator
        ),
        422,
        "validation_error",
    )
    default = await web.client.put(
        f"{API}/tokens/school/default-profile", json={"profile_uuid": uuid}, headers=admin
    )
    assert default.status_code == 200, default.text
    token = (await web.client.get(f"{API}/tokens/school", headers=viewer)).json()
    assert token["default_profile_uuid"] == uuid
    assert_problem(
        await web.client.post(f"{API}/tokens/school/profiles/NOPE/set-default", headers=admin),
        404,
        "profile_not_found",
    )


async def test_no_answer_carries_a_secret(web: Web, simulator: RunningSimulator) -> None:
    await add_token(web, simulator, "acme", devices=3)
    credentials = simulator.sim.credentials(next(iter(simulator.sim.servers)))
    admin = web.as_role(Role.ADMIN)
    texts = [
        (await web.client.get(f"{API}{path}", headers=admin)).text
        for path in ("/tokens?all=true", "/tokens/acme", "/audit", "/health", "/api-keys")
    ]
    for text in texts:
        for value in credentials.values():
            if value.startswith(("CS_", "AS_", "AT_", "CK_")):
                assert value not in text
        assert "PRIVATE KEY" not in text
        for key in web.keys.values():
            assert key not in text


async def test_users_and_keys_through_the_api(web: Web) -> None:
    admin = web.as_role(Role.ADMIN)
    created = await web.client.post(
        f"{API}/users", json={"name": "dana", "role": "operator"}, headers=admin
    )
    assert created.status_code == 201 and len(created.json()["password"]) >= 20
    assert "password" not in (await web.client.get(f"{API}/users", headers=admin)).text
    assert_problem(
        await web.client.post(
            f"{API}/users", json={"name": "dana", "role": "viewer"}, headers=admin
        ),
        409,
        "conflict",
    )
    key = await web.client.post(
        f"{API}/api-keys", json={"name": "hook", "role": "ingest"}, headers=admin
    )
    text = key.json()["key"]
    me = await web.client.get(f"{API}/me", headers={"Authorization": f"Bearer {text}"})
    assert_problem(me, 403, "forbidden")
    assert (await web.client.delete(f"{API}/api-keys/hook", headers=admin)).status_code == 204
    gone = await web.client.get(f"{API}/me", headers={"Authorization": f"Bearer {text}"})
    assert_problem(gone, 401, "unauthorized")
    assert (await web.client.delete(f"{API}/users/dana", headers=admin)).status_code == 204
    assert_problem(await web.client.delete(f"{API}/users/dana", headers=admin), 404, "not_found")


async def test_a_key_revoked_by_another_process_is_refused_on_the_next_request(
    web: Web,
) -> None:
    viewer = web.as_role(Role.VIEWER)
    assert (await web.client.get(f"{API}/tokens", headers=viewer)).status_code == 200
    # As `adesync apikeys revoke` would, beside the server: straight to the database.
    await accounts.revoke_api_key(web.db, f"key-{Role.VIEWER.value}", actor="test")
    assert_problem(await web.client.get(f"{API}/tokens", headers=viewer), 401, "unauthorized")


async def test_probes(web: Web) -> None:
    assert (await web.client.get("/healthz")).json() == {"status": "ok"}
    assert (await web.client.get("/readyz")).json() == {"status": "ok"}
    spec = (await web.client.get(f"{API}/openapi.json")).json()
    assert spec["openapi"].startswith("3.") and f"{API}/tokens" in spec["paths"]


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Token x"])
async def test_malformed_authorization_headers_are_401(web: Web, header: str) -> None:
    answer = await web.client.get(f"{API}/tokens", headers={"Authorization": header})
    assert_problem(answer, 401, "unauthorized")


async def test_bodies_without_a_length_are_counted(web: Web) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(70):
            yield b"x" * 1024

    answer = await web.client.post(
        f"{API}/tokens",
        content=chunks(),
        headers={**web.as_role(Role.ADMIN), "content-type": "application/json"},
    )
    assert_problem(answer, 413, "payload_too_large")


async def test_metrics_are_mounted(web: Web) -> None:
    answer = await web.client.get("/metrics", headers=web.as_role(Role.VIEWER))
    assert answer.status_code == 200 and "text/plain" in answer.headers["content-type"]


async def test_keyset_cursors_past_64_bits_are_validation_errors(web: Web) -> None:
    # Found by schemathesis: a 20-digit cursor once reached SQLite and overflowed (500).
    huge = "9" * 20
    viewer, admin = web.as_role(Role.VIEWER), web.as_role(Role.ADMIN)
    answer = await web.client.get(f"{API}/devices?after={huge}", headers=viewer)
    assert_problem(answer, 422, "validation_error")
    assert_problem(
        await web.client.get(f"{API}/audit?before={huge}", headers=admin), 422, "validation_error"
    )


def test_every_finding_code_links_its_help_page_in_problem_details() -> None:
    from adesync.health import RULES
    from adesync.web.problems import problem_type

    for rule in RULES:
        assert problem_type(rule.code) == f"/help/findings#{rule.code}"
    assert problem_type("token_exists") == "about:blank"
