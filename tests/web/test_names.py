"""Names at creation are ASCII and whole (no look-alikes, no trailing newline); names stored
before the rule keep working, and their certificate downloads name the file per RFC 6266."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from adesync.store import token_repo
from adesync.store.types import utcnow
from adesync.web.roles import Role
from tests.web.conftest import Web
from tests.web.test_api import API, assert_problem


@pytest.mark.parametrize("name", ["令牌", "north\n", "-north", "..", "n" * 65, "ｎorth"])
async def test_new_token_names_are_ascii_and_whole(web: Web, name: str) -> None:
    answer = await web.client.post(
        f"{API}/tokens", json={"name": name}, headers=web.as_role(Role.ADMIN)
    )
    assert answer.status_code in (400, 422), answer.text
    assert answer.json()["code"] in ("token_name_invalid", "validation_error")


async def test_new_user_and_key_names_are_ascii_and_whole(web: Web) -> None:
    admin = web.as_role(Role.ADMIN)
    for name in ("admin\n", "kadmin\n", "ädmin"):
        user = await web.client.post(
            f"{API}/users", json={"name": name, "role": "viewer"}, headers=admin
        )
        assert_problem(user, 422, "validation_error")
        key = await web.client.post(
            f"{API}/api-keys", json={"name": name, "role": "viewer"}, headers=admin
        )
        assert_problem(key, 422, "validation_error")
    assert_problem(
        await web.client.post(
            f"{API}/api-keys", json={"name": "a@b", "role": "viewer"}, headers=admin
        ),
        422,
        "validation_error",
    )
    user = await web.client.post(
        f"{API}/users", json={"name": "ops+adesync@example.com", "role": "viewer"}, headers=admin
    )
    assert user.status_code == 201, user.text
    created = await web.client.post(f"{API}/tokens", json={"name": "north_1.b-2"}, headers=admin)
    assert created.status_code == 201, created.text


async def test_a_token_named_before_the_rule_is_listed_downloaded_and_deleted(web: Web) -> None:
    async with web.db.write() as session:
        await token_repo.create_token(
            session,
            name="令牌",
            dep_url="https://mdmenrollment.apple.com",
            token_type="abm",
            now=utcnow(),
        )
    viewer, admin = web.as_role(Role.VIEWER), web.as_role(Role.ADMIN)
    listed = await web.client.get(f"{API}/tokens?all=true", headers=viewer)
    assert [item["name"] for item in listed.json()["items"]] == ["令牌"]
    download = await web.client.get(f"{API}/tokens/令牌/certificate", headers=viewer)
    assert download.status_code == 200 and download.text.startswith("-----BEGIN CERTIFICATE")
    disposition = download.headers["content-disposition"]
    assert disposition == f"attachment; filename=\"__.pem\"; filename*=UTF-8''{quote('令牌.pem')}"
    assert (await web.client.delete(f"{API}/tokens/令牌", headers=admin)).status_code == 204
