"""The health work the scheduler runs (registered in :func:`adesync.wiring.install`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from adesync.health.evaluate import evaluate
from adesync.store.database import Database
from adesync.store.secrets import SecretBox

__all__ = ["PERIODIC_LEASE", "evaluate_after_sync", "evaluate_everything"]

log = logging.getLogger("adesync.health")

# The name of the scheduler lease under which one process evaluates every token.
PERIODIC_LEASE = "health.evaluate"


async def evaluate_after_sync(db: Database, box: SecretBox, token_ids: Sequence[int]) -> None:
    """Re-evaluate tokens after their sync or check (together, in one evaluation). A failure
    here is logged and never fails a sync; the periodic evaluation catches up."""
    try:
        await evaluate(db, token_id=token_ids)
    except Exception:
        log.exception("health evaluation of tokens %s failed", list(token_ids))


async def evaluate_everything(db: Database, box: SecretBox) -> None:
    """Evaluate every token and the installation (one scheduler at a time, under its lease)."""
    await evaluate(db)
