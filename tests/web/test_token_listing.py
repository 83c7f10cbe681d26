"""Token listings read their documents straight from labelled columns; each must equal the
one mapping, token_document of the stored row plus extra_fields, field for field and in the
same order, for tokens in every condition, on both backends."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, update

from adesync.services.tokens import token_document
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.store.tables import tokens
from adesync.store.types import utcnow
from adesync.web.counts import CountCache
from adesync.web.services import console_page_of_tokens, extra_fields, page_of_tokens
from tests.sync.helpers import insert_token


async def test_listing_documents_equal_token_document_and_extra_fields(
    db: Database, box: SecretBox
) -> None:
    now = utcnow()

    async def token(name: str, **values: Any) -> None:
        await insert_token(db, box, name)
        async with db.write() as session:
            await session.execute(update(tokens).where(tokens.c.name == name).values(**values))

    await token(
        "a-installed",
        state="error",
        state_reason="token_expired",
        access_token_expiry=now - timedelta(days=2),
        org_name="Acme",
        terms_not_accepted=True,
        consecutive_failures=3,
        failing_since=now - timedelta(hours=5),
        last_error_status=403,
        default_profile_uuid="P1",
    )
    await token("b-pending", pending_private_key=b"sealed", token_rejected=True)
    await token("c-waiting", oauth_credentials=None, access_token_expiry=None)
    async with db.read() as session:
        stored = {
            row["name"]: row for row in (await session.execute(select(tokens))).mappings().all()
        }

    documents, next_after = await page_of_tokens(db, limit=10, include_waiting=True)
    assert next_after is None
    assert [d["name"] for d in documents] == ["a-installed", "b-pending", "c-waiting"]
    for document in documents:
        row = stored[document["name"]]
        expected = dict(token_document(row))
        expected["device_count"] = 0
        expected.update(extra_fields(row))
        assert list(document.items()) == list(expected.items())
        assert all(type(document[f]) is bool for f in ("keypair_pending", "access_denied"))
    assert documents[0]["status"] == "installed" and documents[2]["status"] == "waiting_for_p7m"
    assert documents[1]["keypair_pending"] is True and documents[0]["keypair_pending"] is False
    assert documents[0]["terms_not_accepted"] is True

    # The console's list reads a subset of the same documents.
    state = SimpleNamespace(db=db, counts=CountCache())
    shown, _ = await console_page_of_tokens(state, limit=10)  # type: ignore[arg-type]
    assert shown == [{field: document[field] for field in shown[0]} for document in documents]
    assert set(shown[0]) == {
        "name",
        "status",
        "state",
        "state_reason",
        "token_type",
        "expires_at",
        "org_name",
        "last_successful_sync_at",
        "device_count",
        "default_profile_uuid",
    }

    installed, _ = await page_of_tokens(db, limit=1)
    assert [d["name"] for d in installed] == ["a-installed"]
