"""Serving a simulator over HTTP with uvicorn: in the foreground, or on a thread for tests."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

import uvicorn

from adesync.simulator.answers import DroppedConnection
from adesync.simulator.app import create_app
from adesync.simulator.state import Simulator

__all__ = ["bind", "run_in_thread", "serve"]


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for every deliberately dropped connection."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


def _config(sim: Simulator, log_level: str) -> uvicorn.Config:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())
    # The simulator writes its own Date header (its clock may be offset on purpose).
    return uvicorn.Config(
        create_app(sim),
        log_level=log_level,
        access_log=False,
        lifespan="off",
        date_header=False,
        server_header=False,
        timeout_keep_alive=30,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; ``OSError`` when the address is taken or not local."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only disables Nagle (TCP_NODELAY) on accepted sockets whose
    # proto is IPPROTO_TCP, and with Nagle on, every keep-alive answer waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(sim: Simulator, sock: socket.socket, log_level: str = "info") -> None:
    """Serve ``sim`` on an already bound socket until interrupted (Ctrl-C)."""
    uvicorn.Server(_config(sim, log_level)).run(sockets=[sock])


def run_in_thread(
    sim: Simulator, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
) -> tuple[str, Callable[[], None]]:
    """Serve ``sim`` on a background thread; returns ``(base_url, stop)``.

    ``port=0`` picks a free port. ``stop()`` shuts the server down and joins the thread.
    """
    sock = bind(host, port)
    server = uvicorn.Server(_config(sim, log_level))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="adesync-simulator", daemon=True
    )
    thread.start()
    started = threading.Event()

    def wait() -> None:
        while not server.started and thread.is_alive():
            started.wait(0.005)

    wait()
    if not server.started:
        sock.close()
        raise RuntimeError("the simulator's HTTP server did not start")
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    base_url = f"http://{shown}:{bound_port}"

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return base_url, stop
