"""``adesync demo``: the simulator, a SQLite home with five tokens in different states, their
syncs and the console, in one process. Stop it with Ctrl-C."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer
import uvicorn

from adesync.commands.common import err, out, run
from adesync.config import load_settings
from adesync.web.workers import listening_socket


def demo(
    home: Path | None = typer.Option(
        None, "--home", help="Keep the demo here (default: a new temporary folder)."
    ),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Console port (0: any)."),
    devices_seed: int = typer.Option(7, "--seed", help="Seed of the simulated devices."),
) -> None:
    """Run the demo on 127.0.0.1 and print the console URL and a login."""
    from adesync.simulator import Simulator, run_in_thread
    from adesync.web.app import create_app
    from adesync.web.demo import add_stub_endpoint, prepare_home, seed
    from adesync.web.runner import serving_config, serving_hooks, with_head_limits

    folder = home.expanduser().resolve() if home else Path(tempfile.mkdtemp(prefix="adesync-demo-"))
    prepare_home(folder)
    sock = listening_socket("127.0.0.1", port)
    console_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = load_settings(home=folder, database_url="", secret_key=None)
    sim = Simulator(devices=0, seed=devices_seed)
    apple_url, stop_sim = run_in_thread(sim)
    # The console may create tokens at the simulator (a loopback address): allow that host.
    sim_host = apple_url.split("://", 1)[-1].rstrip("/")
    settings = settings.model_copy(update={"allowed_dep_hosts": sim_host})
    try:
        err.print(f"Apple simulator at {apple_url}; demo home {folder}", highlight=False)
        setup = run(
            seed(
                settings,
                sim,
                apple_url,
                console_url,
                progress=lambda line: err.print(f"  {line}", highlight=False),
            )
        )
        for token in setup.tokens:
            reason = f" ({token['state_reason']})" if token["state_reason"] else ""
            err.print(
                f"  {token['name']:<18} {token['org_name'] or '':<18} "
                f"{token['state'] or 'not evaluated'}{reason}",
                highlight=False,
            )
        app = create_app(settings, on_start=serving_hooks(2))
        add_stub_endpoint(app)
        out.print(f"\nadesync demo console: {console_url}/login", highlight=False)
        out.print(f"sign in as: admin / {setup.password}", highlight=False, markup=False)
        out.print("Stop with Ctrl-C.", highlight=False)
        served = with_head_limits(app, settings)
        uvicorn.Server(serving_config(served, settings, "warning")).run(sockets=[sock])
    finally:
        stop_sim()
        sock.close()
