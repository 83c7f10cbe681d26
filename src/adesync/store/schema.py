"""The whole schema: importing this module registers every table on ``metadata``.

Each feature keeps its tables in its own ``tables_*`` module (one owner each); migrations,
the secret rotation and the test fixtures read ``metadata`` from here so none is missed.
"""

from __future__ import annotations

from adesync.store import (  # noqa: F401  (imported for their tables)
    tables_enrollment,
    tables_health,
    tables_sync,
    tables_web,
)
from adesync.store.tables import metadata

__all__ = ["metadata"]
