"""The decrypted content of a server token: Apple's four OAuth 1.0a values and their expiry."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from adesync.tokens.errors import DamagedTokenFile

OAUTH_FIELDS = ("consumer_key", "consumer_secret", "access_token", "access_secret")
EXPIRY_FIELD = "access_token_expiry"
BEGIN_MESSAGE = "-----BEGIN MESSAGE-----"
END_MESSAGE = "-----END MESSAGE-----"
_HEADER_LINE = re.compile(r"^[A-Za-z0-9-]+:")


@dataclass(frozen=True)
class TokenPayload:
    """What ABM/ASM put in the ``.p7m``. The four OAuth values are secrets: no ``repr``."""

    consumer_key: str = field(repr=False)
    consumer_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    access_secret: str = field(repr=False)
    access_token_expiry: datetime

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.access_token_expiry <= (now or datetime.now(UTC))

    def to_json(self) -> str:
        """Every field as a JSON object (expiry in ISO 8601 UTC): the text adesync seals."""
        document: dict[str, str] = {name: getattr(self, name) for name in OAUTH_FIELDS}
        document[EXPIRY_FIELD] = (
            self.access_token_expiry.astimezone(UTC).isoformat().replace("+00:00", "Z")
        )
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def from_mapping(cls, document: Mapping[str, object]) -> TokenPayload:
        """Build from Apple's JSON object; raises DamagedTokenFile when a field is unusable.

        Unknown fields are ignored; the four OAuth values must be non-empty strings and the
        expiry an ISO 8601 timestamp (without an offset it is taken as UTC).
        """
        values: dict[str, str] = {}
        for name in OAUTH_FIELDS:
            value = document.get(name)
            if not isinstance(value, str) or not value.strip():
                raise DamagedTokenFile()
            values[name] = value.strip()
        return cls(**values, access_token_expiry=_parse_expiry(document.get(EXPIRY_FIELD)))

    @classmethod
    def from_json(cls, text: str | bytes) -> TokenPayload:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            raise DamagedTokenFile() from None
        if not isinstance(document, dict):
            raise DamagedTokenFile()
        return cls.from_mapping(document)


def _parse_expiry(value: object) -> datetime:
    if not isinstance(value, str):
        raise DamagedTokenFile()
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise DamagedTokenFile() from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_token_message(plaintext: bytes) -> TokenPayload:
    """The payload inside a decrypted token: inner MIME headers, then the JSON between
    ``-----BEGIN MESSAGE-----`` and ``-----END MESSAGE-----`` (wrapped across lines).

    Raises DamagedTokenFile for anything else.
    """
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise DamagedTokenFile() from None
    lines = text.splitlines()
    if lines and _HEADER_LINE.match(lines[0]):
        blank = next((i for i, line in enumerate(lines) if not line.strip()), None)
        if blank is None:
            raise DamagedTokenFile()
        lines = lines[blank + 1 :]
    # Apple wraps the JSON over several lines; joining them without separators restores it.
    body = "".join(line for line in lines if line.strip() not in (BEGIN_MESSAGE, END_MESSAGE))
    return TokenPayload.from_json(body)


__all__ = ["OAUTH_FIELDS", "TokenPayload", "parse_token_message"]
