"""What can go wrong with a server-token file or a stored key pair.

These errors belong to the pure PKI package, so they do not derive from adesync's
``AdesyncError``; the service layer turns them into one sentence for the CLI and web API.
Their ``str()`` never carries a library's error text.
"""

from __future__ import annotations


class TokenFileError(Exception):
    """A ``.p7m`` server-token file that cannot be used; ``str()`` is one clear sentence."""

    default_message = "This file cannot be used as an ABM/ASM server token."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class DamagedTokenFile(TokenFileError):
    """Anything but a foreign recipient: not MIME/base64, not EnvelopedData, undecryptable,
    bad padding, missing fields, unparseable expiry, too large."""

    default_message = "This file is damaged or is not an ABM/ASM server token."


class ForeignTokenFile(TokenFileError):
    """The file is readable CMS, but none of its recipients is a certificate of the given keys."""

    default_message = "This token was made for another MDM server's key."


class KeyPairError(Exception):
    """Stored key material (private key PEM or certificates) cannot be read."""

    def __init__(self, message: str = "The stored key pair is damaged.") -> None:
        super().__init__(message)


__all__ = ["DamagedTokenFile", "ForeignTokenFile", "KeyPairError", "TokenFileError"]
