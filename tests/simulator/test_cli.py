"""``adesync simulate``: it serves, prints how to connect a token, and refuses bad options."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.cli_runner import invoke
from tests.sim_fixtures import SimKeyPair

EXAMPLE = Path(__file__).parents[2] / "examples" / "simulator-scenario.toml"


def test_simulate_serves_and_writes_a_token_file(tmp_path: Path, sim_keypair: SimKeyPair) -> None:
    cert = tmp_path / "demo.pem"
    cert.write_text(sim_keypair.certificate_pem)
    p7m = tmp_path / "demo.p7m"
    process = subprocess.Popen(
        [sys.executable, "-m", "adesync.cli", "simulate", "--port", "0", "--devices", "7",
         "--seed", "3", "--scenario", str(EXAMPLE),
         "--server", "demo", "--certificate", str(cert), "--p7m-out", str(p7m)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("adesync simulator listening on http://127.0.0.1:"), first
        base_url = first.split()[4]
        lines: list[str] = []
        while not lines or "Ctrl-C stops" not in lines[-1]:
            lines.append(process.stdout.readline())
            assert lines[-1], "the simulator stopped printing before its instructions ended"
        text = "".join(lines)
        assert f"adesync tokens add demo --p7m {p7m} --dep-url {base_url}" in text
        assert "adesync tokens keypair NAME --out NAME.pem" in text
        assert f"curl -s -X POST '{base_url}/_sim/servers?name=NAME&format=p7m'" in text
        state = httpx.get(f"{base_url}/_sim/state", timeout=30).json()
        names = [s["server_name"] for s in state["servers"]]
        assert names[-1] == "demo" and "Acme Main MDM" in names
        assert state["seed"] == 3 and state["default_devices"] == 7  # options beat the file
        assert p7m.read_bytes().startswith(b"Content-Type: application/pkcs7-mime")
    finally:
        process.terminate()
        process.communicate(timeout=10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--p7m-out", "x.p7m"], "--certificate and --p7m-out need --server NAME."),
        (["--server", "a", "--p7m-out", "x.p7m"], "--p7m-out needs --certificate"),
        (["--port", "70000"], "--port 70000 is not a TCP port."),
        (["--log-level", "loud"], "--log-level must be one of: critical,"),
        (["--devices", "-5"], "--devices: devices must be between 0 and"),
        (["--scenario", "/nonexistent/s.toml"], "Cannot read the scenario file"),
        (["--server", "a", "--certificate", "/nonexistent/c.pem"], "Cannot read the certificate"),
    ],
)
def test_bad_options_are_one_sentence(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    result = invoke(capsys, "simulate", *args)
    assert result.code != 0
    assert message in result.err and "Traceback" not in result.err
    assert result.out == ""


def test_a_busy_port_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = invoke(capsys, "simulate", "--port", str(port), "--devices", "1")
    assert result.code != 0
    assert f"Cannot listen on 127.0.0.1:{port}" in result.err
