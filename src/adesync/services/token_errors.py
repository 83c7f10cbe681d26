"""The errors of the token actions: each carries the data a door needs to word it.

The message is one sentence that names no command, flag, field or button: the CLI, the API and
the console each word the error for their own users from ``code`` and ``data``
(:mod:`adesync.commands.wording`, :mod:`adesync.web.wording`), and fall back to the message.
"""

from __future__ import annotations

from datetime import datetime

from adesync.errors import AdesyncError, ConflictError, NotFoundError

__all__ = [
    "DepUrlNotAllowed",
    "DifferentServer",
    "DuplicateServer",
    "KeyPairDamaged",
    "KeyPairMissing",
    "OptionInvalid",
    "TokenAlreadyAdded",
    "TokenChanged",
    "TokenFileExpired",
    "TokenFileForeign",
    "TokenFileInvalid",
    "TokenNameInvalid",
    "TokenNotAdded",
    "TokenNotFound",
]


class TokenNameInvalid(AdesyncError):
    code = "token_name_invalid"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name!r} is not a usable token name: use 1 to 64 ASCII letters, digits, '.', '_' "
            "or '-', starting with a letter or digit.",
            data={"name": name},
        )


class TokenNotFound(NotFoundError):
    code = "token_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"There is no token called {name}.", data={"name": name})


class KeyPairMissing(NotFoundError):
    code = "keypair_missing"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Token {name} has no key pair yet: create one, upload its certificate to the MDM "
            "server in ABM/ASM, then add the token file it gives you.",
            data={"name": name},
        )


class KeyPairDamaged(AdesyncError):
    code = "keypair_damaged"

    def __init__(self, name: str, slot: str) -> None:
        super().__init__(
            f"The {slot} key pair of token {name} cannot be read; create a new key pair for it.",
            data={"name": name, "slot": slot},
        )


class TokenFileInvalid(AdesyncError):
    """The file is damaged or is not an ABM/ASM server token (every failure but a foreign key)."""

    code = "token_file_invalid"

    def __init__(self) -> None:
        super().__init__(
            "This file is damaged or is not an ABM/ASM server token; download the token again "
            "from the MDM server in ABM/ASM (a file ending in _smime.p7m)."
        )


class TokenFileForeign(AdesyncError):
    """The file was encrypted to a certificate that is not one of this token's keys."""

    code = "token_file_foreign"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"This token was made for another MDM server's key: upload token {name}'s "
            "certificate to the MDM server in ABM/ASM, then download its token again.",
            data={"name": name},
        )


class TokenFileExpired(AdesyncError):
    code = "token_expired"

    def __init__(self, expired_at: datetime) -> None:
        when = expired_at.strftime("%Y-%m-%d %H:%M UTC")
        super().__init__(
            f"This token expired on {when}; download a new token from the MDM server in ABM/ASM.",
            data={"expired_at": expired_at},
        )


class TokenAlreadyAdded(ConflictError):
    code = "token_exists"

    def __init__(self, name: str, *, holds_token: bool) -> None:
        text = (
            f"Token {name} already holds a server token; renew it to replace it."
            if holds_token
            else f"A token called {name} already exists."
        )
        super().__init__(text, data={"name": name, "holds_token": holds_token})


class TokenNotAdded(ConflictError):
    code = "token_not_added"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Token {name} holds no server token yet; add its first token file instead.",
            data={"name": name},
        )


class DuplicateServer(ConflictError):
    code = "duplicate_server"

    def __init__(self, existing: str, server_uuid: str, server_name: str | None) -> None:
        super().__init__(
            f"Token {existing} already holds MDM server {server_uuid} "
            f"({server_name or 'unnamed'}); only the newest token of a server works, so renew "
            f"{existing} instead, or keep both on purpose.",
            data={"existing": existing, "server_uuid": server_uuid, "server_name": server_name},
        )


class DifferentServer(ConflictError):
    """A renewal for another MDM server: ``reason`` is ``consumer_key`` or ``server_uuid``."""

    code = "different_server"

    def __init__(
        self,
        name: str,
        *,
        reason: str,
        new_server: str | None = None,
        old_server: str | None = None,
    ) -> None:
        if reason == "consumer_key":
            text = (
                f"This token file has another consumer key than token {name}, so it belongs to "
                "a different MDM server (or was downloaded by another ABM/ASM user)."
            )
        else:
            text = (
                f"This token file is for MDM server {new_server}, but token {name} belongs to "
                f"MDM server {old_server}."
            )
        super().__init__(
            text,
            data={
                "name": name,
                "reason": reason,
                "new_server": new_server,
                "old_server": old_server,
            },
        )


class TokenChanged(ConflictError):
    code = "token_changed"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Token {name} was changed by another action meanwhile; try again.",
            data={"name": name},
        )


class DepUrlNotAllowed(AdesyncError):
    """The API or the console named an Apple service URL outside the outbound policy."""

    code = "dep_url_not_allowed"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"The Apple service URL {url} is not allowed: {reason}.",
            data={"field": "dep_url", "dep_url": url, "reason": reason},
        )


class OptionInvalid(AdesyncError):
    """A value a person typed is unusable; ``field`` is its name as the service knows it
    (``dep_url``, ``type``), which each door renames (``--dep-url``)."""

    code = "option_invalid"

    def __init__(self, field: str, value: str, expected: str) -> None:
        super().__init__(
            f"{field} {value!r} is not {expected}.",
            data={"field": field, "value": value, "expected": expected},
        )
