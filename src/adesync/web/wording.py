"""How the API and the console word the errors of the services.

The services' messages name no command, flag or button. The API names its fields and routes in
problem details; the console names its buttons and forms, in the visitor's language. Neither
ever tells a person to run a shell command. Errors without a wording of their own keep the
service's message.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from adesync.errors import AdesyncError
from adesync.store.types import utcnow
from adesync.web.i18n import Translator

__all__ = ["api_words", "console_words", "minutes_until"]

API = "/api/v1/tokens"


def minutes_until(moment: datetime | None) -> int:
    if moment is None:
        return 1
    return max(1, math.ceil((moment - utcnow()).total_seconds() / 60))


_API_WORDS: dict[str, Callable[[dict[str, Any], str], str]] = {
    "duplicate_server": lambda d, m: (
        f"Token {d['existing']} already holds MDM server {d['server_uuid']} "
        f"({d['server_name'] or 'unnamed'}); only the newest token of a server works, so renew "
        f"{d['existing']} instead, or upload again with force=true to keep both."
    ),
    "different_server": lambda d, m: (
        f"{m.rstrip('.')}; upload again with force=true to replace it anyway."
    ),
    "keypair_damaged": lambda d, m: (
        f"The {d['slot']} key pair of token {d['name']} cannot be read; create a new one with "
        f"POST {API}/{d['name']}/certificate."
    ),
    "keypair_missing": lambda d, m: (
        f"Token {d['name']} has no key pair yet; create it with POST {API} first."
    ),
    "token_file_foreign": lambda d, m: (
        f"This token was made for another key: upload the certificate from GET "
        f"{API}/{d['name']}/certificate to the MDM server in ABM/ASM, then download its token "
        "again."
    ),
    "no_credentials": lambda d, m: (
        f"Token {d['name']} has no server token yet; upload its .p7m with PUT "
        f"{API}/{d['name']}/p7m first."
    ),
    "manual_sync_throttled": lambda d, m: (
        f"{m.rstrip('.')}; try again after the time in Retry-After."
    ),
    "apple_throttled": lambda d, m: f"{m.rstrip('.')}; try again after the time in Retry-After.",
}


def api_words(error: AdesyncError) -> str:
    """The ``detail`` of the API's problem document for ``error``."""
    word = _API_WORDS.get(error.code)
    if word is None:
        return error.message
    try:
        return word(error.data, error.message)
    except KeyError:
        return error.message


def _console_values(t: Translator, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` plus the names of the console's buttons the texts point at."""
    return {
        **data,
        "force": t("token.force"),
        "new_keypair": t("token.new_keypair"),
        "more_actions": t("token.more_actions"),
        "download": t("token.download_certificate"),
        "minutes": minutes_until(data.get("next_allowed_at") or data.get("retry_at")),
    }


def console_words(t: Translator, error: AdesyncError) -> str:
    """The message the console shows for ``error``, in ``t``'s language."""
    key = f"action.{error.code}"
    if error.code == "manual_sync_throttled":
        return t("token.sync_throttled", minutes=minutes_until(error.data.get("next_allowed_at")))
    if not t.has(key) and error.code.startswith("profile_") and "profile_uuid" in error.data:
        key = "action.profile_refused"
    if not t.has(key):
        return error.message
    try:
        return t(key, **_console_values(t, error.data))
    except (KeyError, IndexError):
        return error.message
