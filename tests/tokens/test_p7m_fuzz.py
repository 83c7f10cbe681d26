"""Mutated token files: whatever the damage, only the two clean token-file errors escape."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adesync.tokens import TokenFileError, TokenPayload, decrypt_token_file
from tests.fixtures.token_files import VALID_A_FILES, keypair, token_file
from tests.tokens.smime import cms_bytes, wrap

SOURCES = [*sorted(VALID_A_FILES), "other-and-a.p7m", "b-aes128-ber.p7m"]
MESSAGES = {
    "This file is damaged or is not an ABM/ASM server token.",
    "This token was made for another MDM server's key.",
}


@st.composite
def mutated(draw: st.DrawFn, layer: str) -> bytes:
    """A fixture with a few bytes flipped, cut, inserted or dropped, in the file or its CMS."""
    source = token_file(draw(st.sampled_from(SOURCES)))
    data = bytearray(cms_bytes(source) if layer == "cms" else source)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "set", "cut", "insert", "truncate"]))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[at] = draw(st.sampled_from([0x00, 0x80, 0xFF, 0x30, 0x04, 0xA0]))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at:]
    return wrap(bytes(data)) if layer == "cms" else bytes(data)


def _only_clean_errors(data: bytes) -> None:
    try:
        result = decrypt_token_file(data, [keypair("a"), keypair("b")])
    except TokenFileError as exc:
        assert str(exc) in MESSAGES
        assert exc.__cause__ is None
    else:
        # A mutation that leaves the token readable (a header, base64 line breaks) is fine.
        assert isinstance(result, TokenPayload)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated("file"))
def test_mutated_token_files_only_raise_the_clean_errors(data: bytes) -> None:
    _only_clean_errors(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated("cms"))
def test_mutated_cms_structures_only_raise_the_clean_errors(data: bytes) -> None:
    _only_clean_errors(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_only_raise_the_clean_errors(data: bytes) -> None:
    _only_clean_errors(data)
