"""Server-token PKI: the key pair ABM/ASM encrypts to, ``.p7m`` decryption, the token payload.

Pure: no network, no database, nothing else from adesync. Errors here do not derive from
``AdesyncError``; ``adesync.services.tokens`` turns them into one sentence for people.
"""

from adesync.tokens.errors import DamagedTokenFile, ForeignTokenFile, KeyPairError, TokenFileError
from adesync.tokens.keypair import (
    CERTIFICATE_VALIDITY,
    KeyPair,
    certificate_common_name,
    fingerprint,
    generate_keypair,
    issue_certificate,
)
from adesync.tokens.p7m import (
    MAX_TOKEN_FILE_BYTES,
    DecryptedToken,
    decrypt_token_file,
    open_token_file,
)
from adesync.tokens.payload import TokenPayload, parse_token_message

__all__ = [
    "CERTIFICATE_VALIDITY",
    "MAX_TOKEN_FILE_BYTES",
    "DamagedTokenFile",
    "DecryptedToken",
    "ForeignTokenFile",
    "KeyPair",
    "KeyPairError",
    "TokenFileError",
    "TokenPayload",
    "certificate_common_name",
    "decrypt_token_file",
    "fingerprint",
    "generate_keypair",
    "issue_certificate",
    "open_token_file",
    "parse_token_message",
]
