"""``serve --workers N`` on Linux: the supervisor accepts every connection and hands it to the
workers in turn.

Each worker is a uvicorn server process without a listening socket of its own: it receives
accepted connections over a Unix socket pair (``SCM_RIGHTS``) and serves them as uvicorn would.
Taking turns keeps the workers' shares of the connections within one of each other. The kernel
cannot do that: with one SO_REUSEPORT socket per worker it spreads connections by a hash of
their addresses (20 keep-alive clients of bench/api.py fell 4/16 on two workers, and the
clients of the busier one waited four times as long), and with one shared socket the first
worker to wake accepts a whole burst. This is how Node's cluster module spreads connections
too. A worker that dies is skipped and replaced on a new socket pair; a worker still starting
queues the connections it is handed.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import multiprocessing
import multiprocessing.process
import os
import selectors
import signal
import socket
import threading
import time

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from adesync.errors import AdesyncError

__all__ = ["HandedConnectionsServer", "PortUnavailable", "listening_socket", "supervise"]

logger = logging.getLogger("uvicorn.error")

LISTEN_BACKLOG = 2048
# How often the supervisor looks for workers that died (and for Ctrl-C or SIGTERM).
CHECK_SECONDS = 0.5


class PortUnavailable(AdesyncError):
    """The address to serve on cannot be listened on (in use, not this machine's, privileged)."""

    code = "port_unavailable"


def listening_socket(
    host: str, port: int, *, flags: tuple[str, str] = ("--host", "--port")
) -> socket.socket:
    """A non-blocking listening socket on ``host:port`` (0: any free port), for ``serve`` (one
    process, or the supervisor of several) and ``demo``; bound before anything is printed.
    ``flags`` are the options that set the host and port, named in the error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            message = f"Port {port} on {host} is in use; pass another one with {flags[1]}."
        else:
            message = (
                f"Cannot listen on {host}:{port} ({exc.strerror}); check {flags[0]} and {flags[1]}."
            )
        raise PortUnavailable(message) from None
    return sock


class HandedConnectionsServer(uvicorn.Server):
    """A uvicorn server that serves the connections it receives on ``channel`` (one file
    descriptor per message) instead of accepting its own; it stops when the supervisor's end
    of the channel closes."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        self._adopting: set[asyncio.Task[None]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        self.channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self.channel.fileno(), self._take_connections)

    def _take_connections(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data, fds, _flags, _address = socket.recv_fds(self.channel, 16, 1)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data and not fds:
                # The supervisor is gone: serve what is open, then stop.
                loop.remove_reader(self.channel.fileno())
                self.should_exit = True
                return
            for fd in fds:
                task = loop.create_task(self._adopt(socket.socket(fileno=fd)))
                self._adopting.add(task)
                task.add_done_callback(self._adopting.discard)

    async def _adopt(self, connection: socket.socket) -> None:
        config = self.config
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: config.http_protocol_class(  # type: ignore[call-arg]
                    config=config, server_state=self.server_state, app_state=self.lifespan.state
                ),
                connection,
            )
        except OSError:
            connection.close()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # No more connections from the supervisor; the open ones are finished by uvicorn.
        asyncio.get_running_loop().remove_reader(self.channel.fileno())
        await super().shutdown(sockets)


def _serve_handed(config: uvicorn.Config, channel: socket.socket) -> None:
    """One worker process: the app from the environment, on the connections it is handed."""
    config.configure_logging()
    HandedConnectionsServer(config, channel).run()


class _Worker:
    """A worker process and the supervisor's end of its channel."""

    def __init__(self, context: multiprocessing.context.SpawnContext, config: uvicorn.Config):
        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.channel.setblocking(False)
        self.process: multiprocessing.process.BaseProcess = context.Process(
            target=_serve_handed, args=(config, theirs), daemon=False
        )
        self.process.start()
        # The child has its own copy now; without closing ours, handing a connection to a
        # worker that died would still succeed.
        theirs.close()

    def hand(self, connection: socket.socket) -> bool:
        """Give ``connection`` to this worker; False if it cannot take it (dead, or its queue
        full)."""
        try:
            socket.send_fds(self.channel, [b"c"], [connection.fileno()])
        except OSError:
            return False
        return True

    def stop(self) -> None:
        self.channel.close()
        if self.process.is_alive():
            self.process.terminate()


def supervise(config: uvicorn.Config, listener: socket.socket, count: int) -> None:
    """``count`` worker processes serving the connections accepted on ``listener``, handed to
    them in turn, until SIGINT or SIGTERM. A worker that dies is replaced, unless it failed
    before serving (then all stop with STARTUP_FAILURE)."""
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    workers = [_Worker(context, config) for _ in range(count)]
    logger.info("Started %d worker processes [%s]", count, os.getpid())
    turn = 0
    failed = False
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    checked = time.monotonic()
    try:
        while not stop.is_set():
            if selector.select(timeout=CHECK_SECONDS):
                turn = _hand_accepted(listener, workers, turn)
            if time.monotonic() - checked >= CHECK_SECONDS:
                checked = time.monotonic()
                failed = _replace_dead(context, config, workers)
                if failed:
                    break
    finally:
        selector.close()
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:
        raise SystemExit(STARTUP_FAILURE)


def _hand_accepted(listener: socket.socket, workers: list[_Worker], turn: int) -> int:
    """Accept what is waiting and hand each connection to the next worker that takes it;
    the turn to start from next time."""
    while True:
        try:
            connection, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return turn
        except OSError as exc:  # out of file descriptors, a connection reset while queued
            logger.warning("Could not accept a connection: %s", exc)
            return turn
        with connection:
            for step in range(len(workers)):
                worker = workers[(turn + step) % len(workers)]
                if worker.hand(connection):
                    turn = (turn + step + 1) % len(workers)
                    break
            else:
                logger.warning("No worker could take a connection; it is closed.")


def _replace_dead(
    context: multiprocessing.context.SpawnContext, config: uvicorn.Config, workers: list[_Worker]
) -> bool:
    """Replace each worker that died; True if one failed to start (then nothing is replaced)."""
    for index, worker in enumerate(workers):
        if worker.process.is_alive():
            continue
        if worker.process.exitcode == STARTUP_FAILURE:
            logger.error("Worker [%s] failed to start; stopping.", worker.process.pid)
            return True
        logger.warning(
            "Worker [%s] died (exit %s); replacing it.", worker.process.pid, worker.process.exitcode
        )
        worker.channel.close()
        workers[index] = _Worker(context, config)
    return False
