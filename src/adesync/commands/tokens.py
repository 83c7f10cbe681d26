"""``adesync tokens keypair|add|renew|list|show|delete``: server tokens from ABM/ASM."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from adesync.commands.common import err, iso, out, print_json, run
from adesync.config import Settings
from adesync.errors import AdesyncError
from adesync.runtime import Runtime, open_runtime
from adesync.services import tokens as service
from adesync.tokens import MAX_TOKEN_FILE_BYTES
from adesync.wiring import install_evaluation

tokens_app = typer.Typer(
    help="Server tokens from ABM/ASM: key pair, add, renew, check, list, show, delete.",
    no_args_is_help=True,
)

T = TypeVar("T")


class FileUnreadable(AdesyncError):
    code = "file_unreadable"


class ConfirmationRequired(AdesyncError):
    code = "confirmation_required"


def verifier(settings: Settings) -> service.Verify | None:
    """Apple's ``/account`` check for add and renew (tests may replace it with ``None``)."""
    from adesync.services.apple_account import make_verifier  # httpx only when needed

    return make_verifier(settings)


def _with_runtime(use: Callable[[Runtime], Awaitable[T]]) -> T:
    # Actions re-evaluate the token's health: its transitions go to the notify outbox.
    install_evaluation()

    async def go() -> T:
        async with open_runtime() as rt:
            return await use(rt)

    return run(go())


def read_token_file(path: Path) -> bytes:
    """The bytes of a ``.p7m`` (a little over the size limit at most, which add then refuses)."""
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else "it cannot be opened"
        if exc.errno == errno.ENOENT:
            reason = "there is no such file"
        raise FileUnreadable(f"Cannot read the token file {path}: {reason.lower()}.") from None


def _write_certificate(path: Path, pem: str) -> None:
    try:
        path.write_text(pem, encoding="ascii")
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else "it cannot be written"
        raise FileUnreadable(f"Cannot write the certificate to {path}: {reason.lower()}.") from None


def _organisation(doc: dict[str, Any]) -> str:
    return str(doc["org_name"]) if doc.get("org_name") else "organisation not verified yet"


@tokens_app.command("keypair")
def keypair(
    name: str = typer.Argument(..., help="The token's name (unique in this installation)."),
    out_file: Path | None = typer.Option(
        None, "--out", help="Write the PEM certificate here (default: standard output)."
    ),
    new: bool = typer.Option(
        False, "--new", help="Make a fresh pending key pair for an existing token."
    ),
) -> None:
    """Write the certificate to upload to the MDM server in ABM/ASM for token NAME."""
    if out_file is not None and not out_file.parent.is_dir():
        raise FileUnreadable(f"Cannot write the certificate to {out_file}: no such directory.")
    result = _with_runtime(lambda rt: service.keypair_certificate(rt.db, rt.box, name, new=new))
    if out_file is not None:
        _write_certificate(out_file, result.certificate_pem)
    else:
        sys.stdout.write(result.certificate_pem)
        sys.stdout.flush()
    if result.created:
        what = f"Created a new {result.slot} key pair for token {name}"
    elif result.reissued:
        what = f"Re-issued the certificate of token {name}'s {result.slot} key pair"
    else:
        what = f"Token {name} keeps its {result.slot} key pair"
    where = f"written to {out_file}" if out_file is not None else "on standard output"
    step = "renew" if result.has_token else "add"
    err.print(
        f"{escape(what)}; its certificate (valid until {iso(result.not_after)}) is "
        f"{escape(where)}. Upload the certificate to the MDM server in ABM/ASM, download the "
        f"token (.p7m), then run `adesync tokens {step} {escape(name)} --p7m FILE`.",
        highlight=False,
    )


def _report_stored(result: service.TokenStored, verb: str) -> None:
    doc = result.token
    expires = iso(doc["expires_at"])
    out.print(
        f"{verb} token {escape(doc['name'])} ({escape(_organisation(doc))}), expires {expires}.",
        highlight=False,
    )
    if result.key_promoted:
        out.print("Its pending key pair is now the active one.", highlight=False)
    if not result.identity_verified:
        err.print(
            "note: Apple's /account was not asked about this token, so its identity is unverified.",
            highlight=False,
        )
    if "duplicate_server" in result.warnings:
        err.print(
            f"warning (duplicate_server): MDM server {escape(str(doc['server_uuid']))} is also "
            f"held by {escape(', '.join(result.duplicate_of))}; only the newest token works.",
            highlight=False,
        )
    if "different_server" in result.warnings:
        err.print(
            "warning (different_server): the new token belongs to a different MDM server than "
            "the one it replaced.",
            highlight=False,
        )


@tokens_app.command("add")
def add(
    name: str = typer.Argument(..., help="The token's name, as given to `tokens keypair`."),
    p7m: Path = typer.Option(..., "--p7m", help="The token file downloaded from ABM/ASM."),
    dep_url: str | None = typer.Option(
        None,
        "--dep-url",
        help=f"Apple's base URL for this token; default {service.DEFAULT_DEP_URL}.",
    ),
    token_type: str | None = typer.Option(None, "--type", help="abm or asm (default abm)."),
    force: bool = typer.Option(
        False, "--force", help="Store it even if another token holds the same MDM server."
    ),
) -> None:
    """Decrypt a .p7m token made for NAME's key pair, check it and store it."""
    data = read_token_file(p7m)
    result = _with_runtime(
        lambda rt: service.add_token(
            rt.db,
            rt.box,
            name,
            data,
            dep_url=dep_url,
            token_type=token_type,
            force=force,
            verify=verifier(rt.settings),
        )
    )
    _report_stored(result, "Added")


@tokens_app.command("renew")
def renew(
    name: str = typer.Argument(..., help="The token to renew."),
    p7m: Path = typer.Option(..., "--p7m", help="The new token file downloaded from ABM/ASM."),
    force: bool = typer.Option(
        False, "--force", help="Replace it even if the file is for a different MDM server."
    ),
) -> None:
    """Replace NAME's credentials with a newer .p7m from the same MDM server."""
    data = read_token_file(p7m)
    result = _with_runtime(
        lambda rt: service.renew_token(
            rt.db, rt.box, name, data, force=force, verify=verifier(rt.settings)
        )
    )
    _report_stored(result, "Renewed")


@tokens_app.command("check")
def check(name: str = typer.Argument(..., help="The token to check with Apple.")) -> None:
    """Prove NAME with Apple now (/session + /account) and re-evaluate its health."""
    from adesync.services.lifecycle import CheckOutcome, check_token
    from adesync.sync.service import SyncService

    result = _with_runtime(lambda rt: check_token(SyncService(rt.db, rt.box, rt.settings), name))
    if result.outcome is CheckOutcome.OK:
        out.print(f"Apple accepted token {escape(name)}.", highlight=False)
        return
    if result.outcome is CheckOutcome.SKIPPED:
        err.print(
            f"{escape(result.message or '')} Apple was not called; it may be called again at "
            f"{iso(result.next_allowed_at)}.",
            highlight=False,
        )
        return
    err.print(
        f"[bold red]{escape(result.error_code or 'error')}:[/bold red] "
        f"{escape(result.message or '')}",
        highlight=False,
    )
    raise typer.Exit(1)


@tokens_app.command("list")
def list_(
    include_waiting: bool = typer.Option(
        False, "--all", help="Also list key pairs still waiting for their first .p7m."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
) -> None:
    """List the tokens that hold credentials."""
    docs = _with_runtime(lambda rt: service.list_tokens(rt.db, include_waiting=include_waiting))
    if as_json:
        print_json(docs)
        return
    if not docs:
        hint = "" if include_waiting else " (`--all` also shows key pairs waiting for a .p7m)"
        out.print(f"No tokens yet{hint}.", highlight=False)
        return
    table = Table("name", "organisation", "type", "state", "expires", "last sync")
    table.add_column("status", no_wrap=True)
    for doc in docs:
        table.add_row(
            escape(doc["name"]),
            escape(doc["org_name"] or "-"),
            doc["token_type"],
            doc["state"] or "-",
            doc["expires_at"].date().isoformat() if doc["expires_at"] else "-",
            iso(doc["last_sync_at"]) or "never",
            doc["status"],
        )
    out.print(table)


@tokens_app.command("show")
def show(
    name: str = typer.Argument(..., help="The token to show."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Show one token: organisation, expiry, sync state and its key pairs' certificates."""
    doc = _with_runtime(lambda rt: service.show_token(rt.db, name))
    if as_json:
        print_json(doc)
        return
    for key, value in doc.items():
        if key == "keypairs":
            continue
        shown = iso(value) if hasattr(value, "astimezone") else value
        out.print(f"{key:<24} {escape(str('-' if shown is None else shown))}", highlight=False)
    for slot, pair in doc["keypairs"].items():
        if pair is None:
            continue
        for cert in pair["certificates"]:
            out.print(
                f"{slot + ' certificate':<24} serial {cert['serial_number']}, valid until "
                f"{iso(cert['not_after'])}, SHA-256 {cert['sha256_fingerprint']}",
                highlight=False,
                soft_wrap=True,
            )


@tokens_app.command("delete")
def delete(
    name: str = typer.Argument(..., help="The token to delete."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete NAME and everything it owns (key pairs, devices, profiles, history)."""
    doc = _with_runtime(lambda rt: service.get_token_document(rt.db, name))
    if not yes:
        if not sys.stdin.isatty():
            raise ConfirmationRequired(
                f"Deleting token {name} needs confirmation and standard input is not a terminal; "
                "pass --yes to delete it."
            )
        if not typer.confirm(
            f"Delete token {name} ({_organisation(doc)}) with its key pairs, devices and "
            "history? This cannot be undone",
            default=False,
        ):
            err.print("Nothing deleted.")
            raise typer.Exit(1)
    _with_runtime(lambda rt: service.delete_token(rt.db, name))
    out.print(f"Deleted token {escape(name)}.", highlight=False)
