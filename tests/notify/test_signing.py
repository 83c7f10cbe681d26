"""Webhook signatures: adesync's signer against its verifier and against the README snippet."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from adesync.notify.signing import sign, signature_header, verify

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = b"a long random string"
BODY = '{"event":"test","text":"令牌"}'.encode()


def readme_verifier() -> Callable[[bytes, str, bytes], bool]:
    """The verification snippet exactly as the README documents it."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Verifying webhook signatures", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, object] = {}
    exec(code.group(1), namespace)  # noqa: S102 (our own documentation)
    return namespace["verify_adesync_signature"]  # type: ignore[return-value]


@pytest.mark.parametrize("check", ["adesync", "readme"])
def test_a_signed_body_verifies_and_a_changed_one_does_not(check: str) -> None:
    verifier = verify if check == "adesync" else readme_verifier()
    header = signature_header(SECRET, BODY)
    assert verifier(SECRET, header, BODY)
    assert not verifier(SECRET, header, BODY + b" ")
    assert not verifier(b"another secret", header, BODY)
    assert not verifier(SECRET, header.replace("v1=", "v1=0"), BODY)
    assert not verifier(SECRET, "garbage", BODY)


@pytest.mark.parametrize("check", ["adesync", "readme"])
def test_an_old_signature_is_refused(check: str) -> None:
    verifier = verify if check == "adesync" else readme_verifier()
    old = int(time.time()) - 3600
    assert not verifier(SECRET, signature_header(SECRET, BODY, timestamp=old), BODY)


def test_the_signature_covers_timestamp_and_body() -> None:
    # Known answer from `printf '1700000000.{}' | openssl dgst -sha256 -hmac k`.
    expected = "c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146"
    assert sign(b"k", 1700000000, b"{}") == expected
    assert verify(b"k", f"t=1700000000,v1={expected}", b"{}", now=1700000100)
    assert not verify(b"k", f"t=1700000001,v1={expected}", b"{}", now=1700000100)
