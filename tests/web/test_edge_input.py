"""Crafted input is a 400 with one sentence, never a 500: brackets nested 60,000 deep, a lone
surrogate or a NUL in a UDID, a profile name or a dep_url (on both backends)."""

from __future__ import annotations

import json
import plistlib

import httpx
import pytest

from adesync.web.roles import Role
from tests.enrollment.helpers import event_count, plist, webhook_body
from tests.health.factory import add_token
from tests.web.conftest import Web
from tests.web.test_api import API

NESTED = b"[" * 30_000 + b"]" * 30_000  # 60,000 brackets, under the 64 KiB body limit
NESTED_OBJECT = b'{"a":' * 9_000 + b"1" + b"}" * 9_000


def _one_sentence(answer: httpx.Response) -> None:
    """A refusal of the request (400, or 422 where a field's validation says it)."""
    assert answer.status_code in (400, 422), answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and detail.endswith(".") and "Traceback" not in detail


@pytest.mark.parametrize("path", ["/webhooks/nanomdm", "/webhooks/micromdm", "/enrollment-events"])
@pytest.mark.parametrize("body", [NESTED, NESTED_OBJECT])
async def test_deeply_nested_json_to_the_ingest_endpoints_is_a_400(
    web: Web, path: str, body: bytes
) -> None:
    answer = await web.client.post(
        API + path,
        content=body,
        headers={**web.as_role(Role.INGEST), "Content-Type": "application/json"},
    )
    _one_sentence(answer)


async def test_deeply_nested_json_to_a_model_body_is_a_400(web: Web) -> None:
    for path in ("/tokens", "/tokens/north/profiles"):
        answer = await web.client.post(
            API + path,
            content=NESTED_OBJECT,
            headers={**web.as_role(Role.ADMIN), "Content-Type": "application/json"},
        )
        _one_sentence(answer)


@pytest.mark.parametrize("bad", ["\ud800", "A\x00B"])
async def test_a_udid_with_a_lone_surrogate_or_nul_is_refused(web: Web, bad: str) -> None:
    ingest = {**web.as_role(Role.INGEST), "Content-Type": "application/json"}
    envelope = webhook_body(plist("Authenticate.2.plist"), "mdm.Authenticate", udid=bad)
    # json.dumps escapes the surrogate as \ud800, as a crafted request would send it.
    answer = await web.client.post(
        API + "/webhooks/nanomdm", content=json.dumps(envelope), headers=ingest
    )
    _one_sentence(answer)
    if "\x00" in bad:  # inside the device's own (binary) plist too
        raw = plistlib.dumps(
            {"MessageType": "Authenticate", "UDID": bad, "Topic": "com.apple.mgmt.x"},
            fmt=plistlib.FMT_BINARY,
        )
        envelope = webhook_body(raw, "mdm.Authenticate")
        answer = await web.client.post(
            API + "/webhooks/nanomdm", content=json.dumps(envelope), headers=ingest
        )
        _one_sentence(answer)
    assert await event_count(web.db) == 0


@pytest.mark.parametrize("bad", ["\udfff", "Staff\x00"])
async def test_a_profile_name_with_a_lone_surrogate_or_nul_is_a_400(web: Web, bad: str) -> None:
    await add_token(web.db, "main")
    profile = {"profile_name": bad, "url": "https://mdm.example.com/enroll"}
    answer = await web.client.post(
        f"{API}/tokens/main/profiles",
        content=json.dumps(profile).encode(),
        headers={**web.as_role(Role.ADMIN), "Content-Type": "application/json"},
    )
    _one_sentence(answer)


@pytest.mark.parametrize("bad", ["http://127.0.0.1:9/\x00", "http://127.0.0.1:9/\ud800"])
async def test_a_dep_url_with_nul_or_a_lone_surrogate_is_a_400(web: Web, bad: str) -> None:
    answer = await web.client.post(
        f"{API}/tokens",
        content=json.dumps({"name": "north", "dep_url": bad}).encode(),
        headers={**web.as_role(Role.ADMIN), "Content-Type": "application/json"},
    )
    _one_sentence(answer)
