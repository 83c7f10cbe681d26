"""The demo: the simulator, a SQLite home, five tokens in different states, their syncs, and the
console, all in one process.

Tokens (organisation in brackets): ``acme-hq`` healthy [Acme Corp]; ``acme-branch`` expiring in
5 days [Acme Corp]; ``contoso-legacy`` expired, seeded through the library since adding refuses
expired files [Contoso Ltd]; ``northwind-school`` with new terms to accept [Northwind School,
ASM]; ``fabrikam-old`` revoked in ABM [Fabrikam Inc]. The healthy and expiring tokens get a
default profile whose enrollment URL is this server's own stub endpoint ``/demo/enroll``; their
devices report MDM check-ins, and a few on ``acme-branch`` never enroll (see
:mod:`adesync.web.demo_enrollment`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from adesync.config import Settings
from adesync.errors import AdesyncError
from adesync.services import tokens as token_service
from adesync.store.types import utcnow
from adesync.tokens import TokenPayload, generate_keypair

__all__ = ["DEMO_TOKENS", "DemoError", "DemoSetup", "add_stub_endpoint", "prepare_home", "seed"]

MARKER = "adesync-demo.json"
DEMO_USER = "admin"


class DemoError(AdesyncError):
    code = "demo_failed"


@dataclass(frozen=True)
class DemoToken:
    name: str
    org: str
    devices: int
    state: str  # healthy | expiring | expired | terms | revoked
    program: str = "abm"  # abm | asm


DEMO_TOKENS = (
    DemoToken("acme-hq", "Acme Corp", 2000, "healthy"),
    DemoToken("acme-branch", "Acme Corp", 700, "expiring"),
    DemoToken("contoso-legacy", "Contoso Ltd", 500, "expired"),
    DemoToken("northwind-school", "Northwind School", 900, "terms", "asm"),
    DemoToken("fabrikam-old", "Fabrikam Inc", 300, "revoked"),
)


@dataclass
class DemoSetup:
    password: str
    tokens: list[dict[str, Any]]


def prepare_home(home: Path) -> None:
    """Make ``home`` ready for a fresh demo: it must be empty, missing, or an earlier demo's
    home (whose database is then replaced); any other folder is refused."""
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists():
            raise DemoError(
                f"{home} is not empty and was not made by `adesync demo`; pass an empty folder."
            )
        for name in ("adesync.db", "adesync.db-wal", "adesync.db-shm"):
            (home / name).unlink(missing_ok=True)
        for child in home.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text(json.dumps({"made_by": "adesync demo"}) + "\n")


def add_stub_endpoint(app: FastAPI) -> None:
    """``/demo/enroll``: where the demo profiles send devices (answers like an MDM would)."""

    async def enroll() -> PlainTextResponse:
        return PlainTextResponse(
            "adesync demo: this stands in for your MDM's enrollment endpoint.\n"
        )

    app.add_api_route("/demo/enroll", enroll, methods=["GET", "POST"], include_in_schema=False)


async def seed(
    settings: Settings,
    sim: Any,
    apple_url: str,
    console_url: str,
    *,
    progress: Callable[[str], None] = lambda _line: None,
) -> DemoSetup:
    """Initialise the home, create the tokens in their states, define the default profiles
    and run the first syncs; returns the console password and the tokens."""
    from adesync.commands.admin import initialise
    from adesync.runtime import open_runtime
    from adesync.services.apple_account import make_verifier
    from adesync.services.profiles import ProfileService
    from adesync.sync.service import SyncService
    from adesync.web import accounts
    from adesync.web.demo_enrollment import seed_enrollment
    from adesync.wiring import install, page_events

    install()
    await initialise(settings)
    now = utcnow()
    async with open_runtime(settings) as rt:
        db, box = rt.db, rt.box
        password = await accounts.reset_password(db, DEMO_USER, actor="system:demo")
        orgs: dict[str, Any] = {}
        for token in DEMO_TOKENS:
            if token.org not in orgs:
                orgs[token.org] = sim.create_org(
                    token.org, org_type="edu" if token.program == "asm" else "org"
                )
        verify = make_verifier(settings)
        servers: dict[str, str] = {}
        for token in DEMO_TOKENS:
            progress(f"creating token {token.name} ({token.org}, {token.devices} devices)")
            org_id = orgs[token.org].org_id
            if token.state == "expired":
                keypair = generate_keypair(token.name)
                download = sim.create_server(
                    token.name,
                    certificate_pem=keypair.certificate_pem(),
                    devices=token.devices,
                    token_expiry=now - timedelta(days=3),
                    org_id=org_id,
                )
                payload = TokenPayload.from_json(json.dumps(download.token.payload()))
                server = sim.server(download.server_uuid)
                identity = token_service.AccountIdentity(
                    server_uuid=server.uuid,
                    server_name=server.name,
                    org_name=token.org,
                    admin_id=server.admin_id,
                )
                await token_service.seed_token(
                    db,
                    box,
                    token.name,
                    payload,
                    keypair,
                    dep_url=apple_url,
                    token_type=token.program,
                    identity=identity,
                    now=now - timedelta(days=368),
                )
                servers[token.name] = server.uuid
                continue
            certificate = await token_service.keypair_certificate(db, box, token.name)
            download = sim.create_server(
                token.name,
                certificate_pem=certificate.certificate_pem,
                devices=token.devices,
                token_expiry=now + timedelta(days=5 if token.state == "expiring" else 300),
                org_id=org_id,
            )
            assert download.p7m is not None
            await token_service.add_token(
                db,
                box,
                token.name,
                download.p7m,
                dep_url=apple_url,
                token_type=token.program,
                verify=verify,
            )
            servers[token.name] = download.server_uuid

        sync = SyncService(db, box, settings, page_events=page_events())
        profiles = ProfileService(sync)
        for token in DEMO_TOKENS:
            if token.state in ("healthy", "expiring"):
                progress(f"defining the default profile of {token.name}")
                await profiles.define(
                    token.name,
                    {
                        "profile_name": f"{token.org} — standard",
                        "url": f"{console_url}/demo/enroll",
                        "is_supervised": True,
                        "is_mandatory": True,
                        "is_mdm_removable": False,
                        "support_phone_number": "+1 555 0100",
                        "department": "IT",
                        "skip_setup_items": ["AppleID", "Siri", "Diagnostics"],
                    },
                    default=True,
                )
        # Now the ABM/ASM side goes wrong for two of them, as it does in real life.
        sim.set_terms_pending(orgs["Northwind School"].org_id, True)
        sim.revoke_token(servers["fabrikam-old"])
        progress("syncing every token (the first sync fetches all devices)")
        reports = await sync.sync_named(None, trigger="add")
        await seed_enrollment(db, sim, sync, servers, utcnow(), progress)
        documents = await token_service.list_tokens(db)
        outcome = {report.token: report for report in reports}
        summary = [
            {
                "name": doc["name"],
                "org_name": doc["org_name"],
                "state": doc["state"],
                "state_reason": doc["state_reason"],
                "sync": outcome[doc["name"]].outcome if doc["name"] in outcome else None,
            }
            for doc in documents
        ]
    return DemoSetup(password=password, tokens=summary)
