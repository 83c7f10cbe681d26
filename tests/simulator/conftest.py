"""The simulator's tests run against a real uvicorn server on 127.0.0.1 (see tests/sim_fixtures)."""

from tests.sim_fixtures import sim_keypair, simulator  # noqa: F401  (pytest fixtures)
