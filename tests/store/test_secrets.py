from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from adesync.store.secrets import SecretBox, SecretKeyError, load_box, write_key_file


def test_secrets_round_trip() -> None:
    box = SecretBox.generate()
    sealed = box.seal_text("CS_0123")
    assert b"CS_0123" not in sealed
    assert box.open_text(sealed) == "CS_0123"


def test_each_seal_uses_a_fresh_nonce() -> None:
    box = SecretBox.generate()
    assert box.seal(b"x") != box.seal(b"x")


def test_wrong_key_is_a_clear_error_not_garbage() -> None:
    sealed = SecretBox.generate().seal(b"secret")
    with pytest.raises(SecretKeyError, match="another key"):
        SecretBox.generate().open(sealed)


def test_tampered_secret_is_refused() -> None:
    box = SecretBox.generate()
    sealed = bytearray(box.seal(b"secret"))
    sealed[-1] ^= 1
    with pytest.raises(SecretKeyError):
        box.open(bytes(sealed))


@pytest.mark.parametrize("text", ["not base64 !!", "c2hvcnQ="])
def test_malformed_key_text_is_a_clear_error(text: str) -> None:
    with pytest.raises(SecretKeyError, match="ADESYNC_SECRET_KEY"):
        load_box(text, Path("/nonexistent"))


def test_missing_key_file_says_to_restore_it_never_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError, match=r"restore secret\.key") as raised:
        load_box(None, tmp_path / "secret.key")
    assert "init" not in str(raised.value)
    assert "adesync restore" in str(raised.value)


def test_key_file_is_written_0600(tmp_path: Path) -> None:
    box = SecretBox.generate()
    path = tmp_path / "secret.key"
    write_key_file(path, box)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_box(None, path).key_check == box.key_check
