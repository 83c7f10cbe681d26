"""The public surface of adesync.apple, and its independence from the rest of adesync."""

from __future__ import annotations

import subprocess
import sys

import adesync.apple

CONTRACT = {
    "AppleClient",
    "OAuthCredentials",
    "SessionCache",
    "AppleError",
    "AccountDetail",
    "Device",
    "DevicePage",
    "Profile",
    "DefineProfileResponse",
    "AssignProfileResponse",
    "DeviceStatusResponse",
    "DeviceDetailsResponse",
    "ActivationLockResponse",
    "DEFAULT_BASE_URL",
}


def test_the_contract_is_exported() -> None:
    assert set(adesync.apple.__all__) >= CONTRACT
    for name in adesync.apple.__all__:
        assert hasattr(adesync.apple, name), name


def test_importing_it_loads_nothing_else_from_adesync() -> None:
    probe = (
        "import sys, adesync.apple;"
        "print(sorted(m for m in sys.modules if m.startswith('adesync.')"
        " and not m.startswith('adesync.apple')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
