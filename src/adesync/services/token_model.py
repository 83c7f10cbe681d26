"""What the token actions share: the token document, Apple's account identity, and the checks
on what a person typed."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from adesync.outbound import AllowedHosts, dep_refusal
from adesync.redact import redact_url
from adesync.services.token_errors import (
    DepUrlNotAllowed,
    OptionInvalid,
    TokenFileInvalid,
    TokenNameInvalid,
)
from adesync.tokens import MAX_TOKEN_FILE_BYTES, TokenPayload

DEFAULT_DEP_URL = "https://mdmenrollment.apple.com"
TOKEN_TYPES = ("abm", "asm")
DEFAULT_TOKEN_TYPE = TOKEN_TYPES[0]
# Names rows may already have (looked up, listed, deleted), and the ASCII rule new names follow:
# a name reaches file names, URLs and audit lines, where Unicode look-alikes, a trailing newline,
# a leading '-' (a CLI flag) or '.'/'..' (a URL path step) would mislead or break.
_NAME = re.compile(r"^\w[\w.-]{0,99}$")
NEW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

TokenDocument = dict[str, Any]
# A row of the tokens table as SQLAlchemy returns it (keys are column names).
TokenRow = Mapping[Any, Any]


@dataclass(frozen=True)
class AccountIdentity:
    """The MDM server and organisation behind a token, as Apple's ``/account`` reports them."""

    server_uuid: str
    server_name: str | None = None
    org_name: str | None = None
    org_email: str | None = None
    org_phone: str | None = None
    org_address: str | None = None
    org_id: str | None = None
    org_id_hash: str | None = None
    org_type: str | None = None
    org_version: str | None = None
    admin_id: str | None = None

    def columns(self) -> dict[str, str | None]:
        return asdict(self)


Verify = Callable[[TokenPayload, str], Awaitable[AccountIdentity]]
"""Asks Apple who a token belongs to: ``(credentials, dep_url) -> AccountIdentity``.

It raises an AdesyncError (one sentence) to refuse the token; nothing is stored then.
"""


def token_document(row: TokenRow) -> TokenDocument:
    """A token as listings and the API show it (never a secret). Fields other features own
    (state, sync times, default profile) are null until they fill them; ``device_count`` counts
    live devices when the row was read with it (see ``token_repo.device_count_column``)."""
    return {
        "name": row["name"],
        "status": "installed" if row["oauth_credentials"] is not None else "waiting_for_p7m",
        "state": row["state"],
        "state_reason": row["state_reason"],
        "token_type": row["token_type"],
        "expires_at": row["access_token_expiry"],
        "org_name": row["org_name"],
        "server_name": row["server_name"],
        "server_uuid": row["server_uuid"],
        "admin_id": row["admin_id"],
        "dep_url": row["dep_url"],
        "last_sync_at": row["last_sync_at"],
        "last_successful_sync_at": row["last_successful_sync_at"],
        "last_error_code": row["last_error_code"],
        "device_count": row.get("device_count"),
        "default_profile_uuid": row["default_profile_uuid"],
        "identity_verified_at": row["identity_verified_at"],
        "added_at": row["token_added_at"],
        "renewed_at": row["token_renewed_at"],
        "keypair_pending": row["pending_private_key"] is not None,
    }


def check_name(name: str) -> str:
    """``name`` as a token that may exist may be called (rows made before the ASCII rule too)."""
    if not _NAME.match(name):
        raise TokenNameInvalid(name)
    return name


def check_new_name(name: str) -> str:
    """``name`` for a new token: 1 to 64 ASCII letters, digits, '.', '_' or '-', starting with
    a letter or digit."""
    if not NEW_NAME.fullmatch(name):
        raise TokenNameInvalid(name)
    return name


def check_dep_url(
    url: str | None, field: str = "dep_url", *, policy: AllowedHosts | None = None
) -> str:
    """``url`` normalised (Apple's default if None); ``field`` names it in the error.

    With a ``policy`` (the API and the console ask for ``ADESYNC_ALLOWED_DEP_HOSTS``), only
    Apple's host or an allowed one, without userinfo, and no local or internal address the
    policy does not name literally (DepUrlNotAllowed); without one (the CLI's ``--dep-url``,
    the host administrator's own choice) any http(s) URL."""
    if url is None:
        return DEFAULT_DEP_URL
    expected = f"an http(s) URL such as {DEFAULT_DEP_URL}"
    if len(url) > 500 or any(ord(c) < 32 or ord(c) == 127 for c in url) or not url.isascii():
        raise OptionInvalid(field, url.encode("ascii", "replace").decode()[:100], expected)
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        raise OptionInvalid(field, url, expected) from None
    if parts.scheme not in ("https", "http") or not host:
        raise OptionInvalid(field, url, expected)
    if policy is not None:
        shown = redact_url(url)
        if parts.username is not None or parts.password is not None:
            raise DepUrlNotAllowed(shown, "it holds a user name or password")
        default_port = 443 if parts.scheme == "https" else 80
        reason = dep_refusal(policy, host, port or default_port, None)
        if reason is not None:
            raise DepUrlNotAllowed(shown, reason)
    return url.strip().rstrip("/")


def check_token_type(token_type: str | None, field: str = "type") -> str | None:
    if token_type is not None and token_type not in TOKEN_TYPES:
        raise OptionInvalid(field, token_type, "one of: abm, asm")
    return token_type


def check_file_size(data: bytes) -> None:
    if not data or len(data) > MAX_TOKEN_FILE_BYTES:
        raise TokenFileInvalid()
