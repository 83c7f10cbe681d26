"""``adesync apikeys``: API keys for scripts and MDM webhooks (create, list, revoke)."""

from __future__ import annotations

import typer

from adesync.commands.common import err, out, print_json, run
from adesync.runtime import open_runtime
from adesync.web import accounts
from adesync.web.audit import cli_actor

apikeys_app = typer.Typer(help="API keys.", no_args_is_help=True)


@apikeys_app.command("create")
def create(
    name: str = typer.Argument(..., help="A name saying who uses the key."),
    role: str = typer.Option(..., "--role", help="viewer, operator, admin or ingest."),
) -> None:
    """Create an API key and print it once (send it as `Authorization: Bearer KEY`)."""
    parsed = accounts.parse_role(role, for_key=True)

    async def go() -> str:
        async with open_runtime() as rt:
            _key, text = await accounts.create_api_key(rt.db, name, parsed, actor=cli_actor())
            return text

    text = run(go())
    err.print(f"Created API key {name} ({parsed.value}). It is shown once:")
    out.print(text, markup=False, highlight=False)


@apikeys_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """List API keys (names, roles and prefixes; never the keys)."""

    async def go() -> list[accounts.ApiKey]:
        async with open_runtime() as rt:
            return await accounts.list_api_keys(rt.db)

    found = run(go())
    if as_json:
        print_json([key.to_dict() for key in found])
        return
    for key in found:
        used = key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "never"
        out.print(f"{key.name}\t{key.role.value}\tades_{key.prefix}_…\tlast used {used}")


@apikeys_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The key's name.")) -> None:
    """Revoke an API key at once."""

    async def go() -> None:
        async with open_runtime() as rt:
            await accounts.revoke_api_key(rt.db, name, actor=cli_actor())

    run(go())
    out.print(f"Revoked API key {name}.", markup=False)
