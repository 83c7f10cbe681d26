"""Roles of console users and API keys, and what each may do."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["KEY_ROLES", "USER_ROLES", "Role"]


class Role(StrEnum):
    """``viewer`` reads; ``operator`` also syncs, checks and assigns; ``admin`` also manages
    tokens, profiles, users and keys; ``ingest`` (API keys only) may only post enrollment events.
    """

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    INGEST = "ingest"

    @property
    def rank(self) -> int:
        """Order of the console roles; ``ingest`` is outside it (rank -1)."""
        return {"viewer": 0, "operator": 1, "admin": 2}.get(self.value, -1)

    def allows(self, needed: Role) -> bool:
        """True when this role may do what ``needed`` may do."""
        if needed is Role.INGEST:
            return self in (Role.INGEST, Role.ADMIN)
        return self.rank >= needed.rank >= 0


USER_ROLES = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
KEY_ROLES = (Role.VIEWER, Role.OPERATOR, Role.ADMIN, Role.INGEST)
