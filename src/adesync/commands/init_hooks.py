"""Steps that later features add to ``adesync init`` (for example the first console user).

A hook takes (settings, database, secret box) and returns lines describing what it did;
it must change nothing when there is nothing to do, so that ``init`` stays idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from adesync.config import Settings
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.web.bootstrap import create_first_admin

InitHook = Callable[[Settings, Database, SecretBox], Awaitable[list[str]]]

HOOKS: list[InitHook] = [create_first_admin]
