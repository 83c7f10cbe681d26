"""``adesync users``: console users (add, list, reset-password, delete)."""

from __future__ import annotations

import typer

from adesync.commands.common import err, out, print_json, run
from adesync.runtime import open_runtime
from adesync.web import accounts
from adesync.web.audit import cli_actor

users_app = typer.Typer(help="Console users.", no_args_is_help=True)


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="Sign-in name."),
    role: str = typer.Option(..., "--role", help="viewer, operator or admin."),
) -> None:
    """Create a console user and print its password once."""
    parsed = accounts.parse_role(role, for_key=False)

    async def go() -> str:
        async with open_runtime() as rt:
            _user, password = await accounts.add_user(rt.db, name, parsed, actor=cli_actor())
            return password

    password = run(go())
    err.print(f"Created user {name} ({parsed.value}). Its password is shown once:")
    out.print(password, markup=False, highlight=False)


@users_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """List console users."""

    async def go() -> list[accounts.User]:
        async with open_runtime() as rt:
            return await accounts.list_users(rt.db)

    found = run(go())
    if as_json:
        print_json([user.to_dict() for user in found])
        return
    for user in found:
        last = user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never"
        out.print(f"{user.name}\t{user.role.value}\tlast sign-in {last}", markup=False)


@users_app.command("reset-password")
def reset_password(name: str = typer.Argument(..., help="Sign-in name.")) -> None:
    """Give a user a new password (printed once) and end their console sessions."""

    async def go() -> str:
        async with open_runtime() as rt:
            return await accounts.reset_password(rt.db, name, actor=cli_actor())

    password = run(go())
    err.print(f"New password for {name}, shown once:")
    out.print(password, markup=False, highlight=False)


@users_app.command("delete")
def delete(name: str = typer.Argument(..., help="Sign-in name.")) -> None:
    """Delete a console user (not the last admin)."""

    async def go() -> None:
        async with open_runtime() as rt:
            await accounts.delete_user(rt.db, name, actor=cli_actor())

    run(go())
    out.print(f"Deleted user {name}.", markup=False)
