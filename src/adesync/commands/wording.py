"""How the command line words the errors of the services: it names its commands and flags.

The services' messages name no command, flag or button; where the CLI has a command or flag
that fixes the error, the sentence here says so. Other errors print their message as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adesync.errors import AdesyncError

__all__ = ["cli_words", "skip_hint"]

# The service's names for what a person typed, as the CLI's options spell them.
_FLAGS = {"dep_url": "--dep-url", "type": "--type"}


def _option_invalid(d: dict[str, Any], _message: str) -> str:
    flag = _FLAGS.get(d["field"], d["field"])
    return f"{flag} {d['value']!r} is not {d['expected']}."


def _token_exists(d: dict[str, Any], message: str) -> str:
    if not d.get("holds_token"):
        return message
    name = d["name"]
    return (
        f"Token {name} already holds a server token; use `adesync tokens renew {name} "
        "--p7m FILE` to replace it."
    )


def _duplicate_server(d: dict[str, Any], _message: str) -> str:
    return (
        f"Token {d['existing']} already holds MDM server {d['server_uuid']} "
        f"({d['server_name'] or 'unnamed'}); only the newest token of a server works, so renew "
        f"{d['existing']} instead, or pass --force to keep both."
    )


_WORDS: dict[str, Callable[[dict[str, Any], str], str]] = {
    "option_invalid": _option_invalid,
    "token_exists": _token_exists,
    "duplicate_server": _duplicate_server,
    "token_not_found": lambda d, m: f"{m.rstrip('.')}; `adesync tokens list --all` lists all.",
    "keypair_missing": lambda d, m: (
        f"Token {d['name']} has no key pair yet: run `adesync tokens keypair {d['name']}`, "
        "upload the certificate to the MDM server in ABM/ASM, then add the token file it gives "
        "you."
    ),
    "keypair_damaged": lambda d, m: (
        f"The {d['slot']} key pair of token {d['name']} cannot be read; create a new one with "
        f"`adesync tokens keypair {d['name']} --new`."
    ),
    "token_file_foreign": lambda d, m: (
        "This token was made for another MDM server's key: upload the certificate that "
        f"`adesync tokens keypair {d['name']}` writes to the MDM server in ABM/ASM, then "
        "download its token again."
    ),
    "token_not_added": lambda d, m: (
        f"Token {d['name']} holds no server token yet; use `adesync tokens add {d['name']} "
        "--p7m FILE`."
    ),
    "no_credentials": lambda d, m: (
        f"Token {d['name']} has no server token yet; upload its .p7m with "
        f"`adesync tokens add {d['name']} --p7m FILE`."
    ),
    "different_server": lambda d, m: f"{m.rstrip('.')}; pass --force to replace it anyway.",
    "new_key_file_required": lambda d, m: (
        "ADESYNC_SECRET_KEY is set, so the new key must be written to a file first: name a new "
        "file with --new-key-file FILE; nothing was changed."
    ),
    "new_key_file_unused": lambda d, m: (
        f"--new-key-file is for installations that set ADESYNC_SECRET_KEY; this one keeps its "
        f"key in {d['key_file']}, where the new key goes too. Nothing was changed."
    ),
    "restore_clash": lambda d, m: f"{m.rstrip('.')}; pass --force to replace them.",
    "token_changed": lambda d, m: (
        f"Token {d['name']} was changed by another command meanwhile; run it again."
    ),
}


def cli_words(error: AdesyncError) -> str:
    """The sentence the command line prints for ``error``."""
    word = _WORDS.get(error.code)
    if word is None:
        return error.message
    try:
        return word(error.data, error.message)
    except KeyError:  # an error of the same code raised without its data
        return error.message


# What lets a skipped sync run now, by the reason it was skipped.
_SKIP_HINTS = {
    "manual_sync_throttled": "use --force to sync it anyway",
    "full_fetch_throttled": "use --full --force to fetch everything again",
    "apple_throttled": "use --force to call Apple anyway",
}


def skip_hint(error_code: str | None) -> str | None:
    """The CLI's hint for a sync the service skipped (``None`` when there is none)."""
    return _SKIP_HINTS.get(error_code or "")
