"""The token workflow from the command line, against an initialised installation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adesync.store.database import Database
from tests.cli_runner import Result, invoke
from tests.conftest import Home
from tests.fixtures.make_fixtures import VALID_A, VALID_B, message, openssl_encrypt
from tests.fixtures.token_files import fixture_path, keypair, seed_pending

REQUIRED = {
    "name", "state", "state_reason", "token_type", "expires_at", "org_name", "server_name",
    "server_uuid", "admin_id", "dep_url", "last_sync_at", "last_successful_sync_at",
    "last_error_code", "device_count", "default_profile_uuid",
}  # fmt: skip


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Apple here (tests never leave loopback): tokens are stored unverified.
    tests/cli/test_tokens_apple.py covers the /account check against the simulator."""
    monkeypatch.setattr("adesync.commands.tokens.verifier", lambda settings: None)


def _listing(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    result = invoke(capsys, "tokens", "list", "--json", *args)
    assert result.code == 0, result.err
    docs = json.loads(result.out)
    assert isinstance(docs, list)
    return docs


def _one_sentence_error(result: Result) -> str:
    assert result.code != 0
    assert result.out == ""
    assert "Traceback" not in result.err
    text = " ".join(result.err.split())
    assert text.startswith("error: ")
    return text


def test_keypair_upload_download_add_renew_show_delete(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = tmp_path / "north.pem"
    made = invoke(capsys, "tokens", "keypair", "north", "--out", str(cert))
    assert made.code == 0, made.err
    assert made.out == ""
    assert "tokens add north --p7m" in " ".join(made.err.split())
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert _listing(capsys) == []
    waiting = _listing(capsys, "--all")
    assert [(d["name"], d["status"]) for d in waiting] == [("north", "waiting_for_p7m")]

    # ABM/ASM encrypts the token to the uploaded certificate (here: the real openssl tool).
    p7m = tmp_path / "North_Token_2026-11-25T10-00-00Z_smime.p7m"
    p7m.write_bytes(openssl_encrypt([cert.read_bytes()], message(VALID_A)))
    added = invoke(capsys, "tokens", "add", "north", "--p7m", str(p7m), "--type", "asm")
    assert added.code == 0, added.err
    assert "Added token north" in added.out and "2099-06-30" in added.out
    assert "unverified" in added.err
    (doc,) = _listing(capsys)
    assert set(doc) >= REQUIRED
    assert doc["expires_at"] == "2099-06-30T12:00:00Z"
    assert doc["token_type"] == "asm" and doc["device_count"] == 0

    # Renewal reuses the key pair: `keypair` hands out the same certificate again.
    again = invoke(capsys, "tokens", "keypair", "north")
    assert again.code == 0 and again.out == cert.read_text()
    assert "tokens renew north" in " ".join(again.err.split())
    renewal = tmp_path / "renewal.p7m"
    renewal.write_bytes(openssl_encrypt([cert.read_bytes()], message(VALID_B), cipher="-des3"))
    renewed = invoke(capsys, "tokens", "renew", "north", "--p7m", str(renewal))
    assert renewed.code == 0, renewed.err
    shown = invoke(capsys, "tokens", "show", "north", "--json")
    assert json.loads(shown.out)["expires_at"] == "2098-01-15T08:30:00Z"
    assert VALID_B["access_secret"] not in shown.out
    human = invoke(capsys, "tokens", "show", "north")
    assert human.code == 0 and "active certificate" in human.out

    deleted = invoke(capsys, "tokens", "delete", "north", "--yes")
    assert deleted.code == 0, deleted.err
    assert _listing(capsys, "--all") == []


def test_keypair_without_out_prints_only_the_pem_on_stdout(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, "tokens", "keypair", "north")
    assert result.code == 0
    assert result.out.startswith("-----BEGIN CERTIFICATE-----")
    assert result.out.rstrip().endswith("-----END CERTIFICATE-----")
    assert "PRIVATE" not in result.out + result.err


def test_add_before_keypair_says_to_run_keypair(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(
        capsys, "tokens", "add", "north", "--p7m", str(fixture_path("a-aes128-ber.p7m"))
    )
    assert "run `adesync tokens keypair north`" in _one_sentence_error(result)


async def _seeded(home: Home) -> None:
    db = Database(home.db_url)
    try:
        await seed_pending(db, home.box, "north", keypair("a"))
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("other-aes128-ber.p7m", "made for another MDM server's key"),
        ("a-not-json.p7m", "damaged or is not an ABM/ASM server token"),
        ("a-expired.p7m", "expired on 2020-01-01"),
        ("a-certificates.pem", "damaged or is not an ABM/ASM server token"),
    ],
)
async def test_a_wrong_file_is_one_sentence_and_changes_nothing(
    home: Home, capsys: pytest.CaptureFixture[str], file_name: str, expected: str
) -> None:
    await _seeded(home)
    before = invoke(capsys, "tokens", "list", "--all", "--json").out
    result = invoke(capsys, "tokens", "add", "north", "--p7m", str(fixture_path(file_name)))
    assert expected in _one_sentence_error(result)
    assert invoke(capsys, "tokens", "list", "--all", "--json").out == before


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--p7m", "/nonexistent/token.p7m"), "there is no such file"),
        (("--p7m", "{a}", "--type", "vpp"), "--type 'vpp' is not one of"),
        (("--p7m", "{a}", "--dep-url", "mdmenrollment.apple.com"), "--dep-url"),
    ],
)
async def test_bad_arguments_are_one_sentence(
    home: Home, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], expected: str
) -> None:
    await _seeded(home)
    filled = [a.replace("{a}", str(fixture_path("a-aes128-ber.p7m"))) for a in args]
    result = invoke(capsys, "tokens", "add", "north", *filled)
    assert expected in _one_sentence_error(result)


async def test_delete_without_yes_off_a_terminal_refuses(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    await _seeded(home)
    result = invoke(capsys, "tokens", "delete", "north")
    assert "pass --yes" in _one_sentence_error(result)
    assert [d["name"] for d in _listing(capsys, "--all")] == ["north"]


def test_show_and_delete_of_an_unknown_token(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "no token called ghost" in _one_sentence_error(invoke(capsys, "tokens", "show", "ghost"))
    assert "no token called ghost" in _one_sentence_error(
        invoke(capsys, "tokens", "delete", "ghost", "--yes")
    )


def test_keypair_to_a_missing_directory_creates_nothing(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, "tokens", "keypair", "north", "--out", "/nonexistent/dir/north.pem")
    assert "no such directory" in _one_sentence_error(result)
    assert _listing(capsys, "--all") == []
