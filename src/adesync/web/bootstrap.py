"""The first console user: ``adesync init`` creates ``admin`` on a database without users."""

from __future__ import annotations

from adesync.config import Settings
from adesync.errors import ConflictError
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.web.accounts import add_user, count_users
from adesync.web.roles import Role

__all__ = ["FIRST_ADMIN", "create_first_admin"]

FIRST_ADMIN = "admin"


async def create_first_admin(settings: Settings, db: Database, box: SecretBox) -> list[str]:
    """Create ``admin`` with a random password when no user exists; the password is returned
    in the report line (shown once). Does nothing when any user exists."""
    if await count_users(db) > 0:
        return []
    try:
        _user, password = await add_user(db, FIRST_ADMIN, Role.ADMIN, actor="system:init")
    except ConflictError:  # another init got there first
        return []
    return [
        f"created console user {FIRST_ADMIN} with password {password} "
        "(shown once; change it with `adesync users reset-password admin`)"
    ]
