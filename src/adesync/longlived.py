"""Keeping a long-running process's start-up objects out of garbage collection.

Start-up leaves hundreds of thousands of objects that live as long as the process (modules,
table metadata, pydantic models, routes, message catalogues). Every full collection walks all
of them again, and a process that allocates steadily (a sync writing pages, a server answering
requests) runs one every few seconds: 50-95 ms of a serve worker's time in which none of its
requests moved (measured with bench/api.py). Frozen, they are no longer walked.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_objects"]


def freeze_startup_objects(*, collect: bool = True) -> None:
    """Move every object alive now to the permanent generation. ``collect`` first frees
    start-up's garbage, which would otherwise be kept for the life of the process; a short
    process may skip it."""
    if collect:
        gc.collect()
    gc.freeze()
