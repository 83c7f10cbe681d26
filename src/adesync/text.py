"""Whether text from outside can be stored: no NUL (PostgreSQL's text refuses it) and no lone
surrogate (no encoding can write it), checked where requests are read."""

from __future__ import annotations

from typing import Any

__all__ = ["storable", "storable_document"]


def storable(text: str) -> bool:
    """``text`` holds neither NUL nor a lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_document(document: Any) -> bool:
    """Every string (keys too) of a parsed JSON document is :func:`storable`."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if not storable(value):
                return False
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return True
