"""The base of every error adesync expects and explains to a person."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AdesyncError(Exception):
    """An expected failure: its message is one clear sentence for the person at the keyboard.

    The CLI prints the message (never a traceback unless ``--debug``) and exits with
    ``exit_code``; the web API turns it into a problem-details answer carrying ``code``.
    """

    code: str = "error"
    exit_code: int = 1
    http_status: int = 400

    def __init__(
        self, message: str, *, code: str | None = None, data: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.data: dict[str, Any] = dict(data or {})
        """What a door needs to word this error its own way (a token name, a field, Apple's
        code); the message itself names no command, flag or button."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class ConfigError(AdesyncError):
    """A setting has a value adesync cannot use."""

    code = "config_invalid"


class NotFoundError(AdesyncError):
    """The named thing does not exist."""

    code = "not_found"
    http_status = 404


class ConflictError(AdesyncError):
    """The request clashes with what is stored (a duplicate name, a different MDM server)."""

    code = "conflict"
    http_status = 409
