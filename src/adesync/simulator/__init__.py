"""A faithful local simulator of Apple's ADE (DEP) service and of ABM's "Download Token" step.

Use it in-process::

    from adesync.simulator import Simulator, create_app, run_in_thread

    sim = Simulator(devices=50, seed=1)
    download = sim.create_server("MDM", certificate_pem=pem)   # download.p7m is the token file
    base_url, stop = run_in_thread(sim)                         # real HTTP on 127.0.0.1
    ...
    stop()

or over HTTP with ``adesync simulate``. It shares no code with :mod:`adesync.apple`, so it can
catch that client's mistakes. docs/simulator.md describes the behaviour and the admin API.
"""

from adesync.simulator.answers import AdminError, DroppedConnection
from adesync.simulator.app import create_app
from adesync.simulator.faults import ENDPOINTS
from adesync.simulator.scenario import ScenarioError, apply_scenario, load_scenario
from adesync.simulator.serve import run_in_thread
from adesync.simulator.state import Settings, Simulator, TokenDownload

__all__ = [
    "ENDPOINTS",
    "AdminError",
    "DroppedConnection",
    "ScenarioError",
    "Settings",
    "Simulator",
    "TokenDownload",
    "apply_scenario",
    "create_app",
    "load_scenario",
    "run_in_thread",
]
