from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import ForeignKey, insert, select

from adesync.commands.common import to_json
from adesync.services import tokens as service
from adesync.store.database import Database
from adesync.store.schema import metadata
from adesync.store.secrets import SecretBox
from adesync.store.tables import tokens
from tests.fixtures.make_fixtures import VALID_A
from tests.fixtures.token_files import keypair, seed_pending, token_file
from tests.services.test_tokens_add import identity_of

LIST_FIELDS = {
    "name",
    "state",
    "state_reason",
    "token_type",
    "expires_at",
    "org_name",
    "server_name",
    "server_uuid",
    "admin_id",
    "dep_url",
    "last_sync_at",
    "last_successful_sync_at",
    "last_error_code",
    "device_count",
    "default_profile_uuid",
}


async def _two_tokens(db: Database, box: SecretBox) -> None:
    await seed_pending(db, box, "north", keypair("a"))
    await service.add_token(db, box, "north", token_file("a-aes128-ber.p7m"), verify=identity_of())
    await seed_pending(db, box, "south", keypair("b"))  # still waiting for its .p7m


async def test_list_shows_tokens_with_credentials_and_all_adds_waiting_key_pairs(
    db: Database, box: SecretBox
) -> None:
    await _two_tokens(db, box)
    listed = await service.list_tokens(db)
    assert [d["name"] for d in listed] == ["north"]
    assert set(listed[0]) >= LIST_FIELDS
    assert listed[0]["status"] == "installed"
    assert listed[0]["org_name"] == "Example School"
    # Health is evaluated as the token is added (not synced yet, no default profile).
    assert listed[0]["device_count"] == 0 and listed[0]["state"] == "warning"
    assert listed[0]["state_reason"] is not None
    everything = await service.list_tokens(db, include_waiting=True)
    assert [(d["name"], d["status"]) for d in everything] == [
        ("north", "installed"),
        ("south", "waiting_for_p7m"),
    ]


async def test_show_has_the_certificates_and_no_secret(db: Database, box: SecretBox) -> None:
    await _two_tokens(db, box)
    doc = await service.show_token(db, "north")
    assert doc["org_email"] == "it@example.edu"
    active = doc["keypairs"]["active"]
    assert len(active["certificates"]) == 2  # fixture key a carries a re-issued certificate
    assert active["certificates"][-1]["not_after"] > datetime(2030, 1, 1, tzinfo=UTC)
    assert doc["keypairs"]["pending"] is None
    text = to_json(doc) + to_json(await service.list_tokens(db, include_waiting=True))
    for secret in (VALID_A["consumer_secret"], VALID_A["access_secret"], VALID_A["access_token"]):
        assert secret not in text
    assert "PRIVATE KEY" not in text
    assert json.loads(to_json(doc))["expires_at"] == "2099-06-30T12:00:00Z"


async def test_show_and_delete_of_an_unknown_token_say_so(db: Database) -> None:
    with pytest.raises(service.TokenNotFound):
        await service.show_token(db, "nowhere")
    with pytest.raises(service.TokenNotFound):
        await service.delete_token(db, "nowhere")


def test_every_table_that_refers_to_a_token_goes_with_it() -> None:
    referring = [
        (table.name, fk)
        for table in metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table is tokens
    ]
    for table_name, fk in referring:
        assert isinstance(fk, ForeignKey)
        assert fk.ondelete in ("CASCADE", "SET NULL"), f"{table_name} keeps rows of deleted tokens"


async def test_delete_removes_the_token_and_what_it_owns(db: Database, box: SecretBox) -> None:
    await _two_tokens(db, box)
    owned = [
        table
        for table in metadata.sorted_tables
        if any(fk.column.table is tokens for fk in table.foreign_keys)
    ]
    devices = next((t for t in owned if t.name == "devices"), None)
    doc = await service.show_token(db, "north")
    if devices is not None:
        async with db.write() as session:
            token_id = (
                await session.execute(select(tokens.c.id).where(tokens.c.name == "north"))
            ).scalar_one()
            now = datetime.now(UTC)
            await session.execute(
                insert(devices).values(
                    token_id=token_id, serial_number="C02XYZ", first_seen_at=now, updated_at=now
                )
            )
    deleted = await service.delete_token(db, "north")
    assert deleted["name"] == doc["name"]
    assert [d["name"] for d in await service.list_tokens(db, include_waiting=True)] == ["south"]
    if devices is not None:
        async with db.read() as session:
            assert (await session.execute(select(devices))).all() == []
