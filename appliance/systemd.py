"""Tell systemd how the daemon is doing (the sd_notify protocol), without libsystemd.

The units in ``systemd/`` are ``Type=notify``: systemd holds dependent units and ``systemctl
start`` until the daemon says ``READY=1``, which it must say only once the socket is bound and
the model is loaded; a ``WatchdogSec=`` restarts it when ``WATCHDOG=1`` stops arriving. The
protocol is one datagram of newline-separated ``KEY=value`` lines sent to the AF_UNIX socket
named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace).

Outside systemd (a shell, a container, the tests) ``$NOTIFY_SOCKET`` is unset and every function
here does nothing. A failed send is logged at debug level and never raised: a lost notification
must not take down a daemon that is otherwise serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from types import FrameType

import uvicorn

__all__ = ["ServiceServer", "notify", "ready", "status", "stopping", "watchdog_interval",
           "watchdog_loop"]

log = logging.getLogger(__name__)

# Bounds the time a send may block: watchdog pings are sent from the event loop, and a stuck
# receiver must cost at most this, not the loop.
_SEND_TIMEOUT_S = 1.0


def _notify_address() -> str | None:
    """The socket address from ``$NOTIFY_SOCKET``, or None when there is nothing to send to."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        return "\0" + address[1:]
    if address.startswith("/"):
        return address
    if address:
        # e.g. "vsock:..." (systemd >= 253, for VMs): not a place this daemon runs.
        log.debug("NOTIFY_SOCKET=%r is not an AF_UNIX address; not notifying", address)
    return None


def notify(*states: str) -> bool:
    """Send ``states`` (``KEY=value`` lines) to systemd as one datagram.

    Returns True when the datagram was sent, False when ``$NOTIFY_SOCKET`` is unset or the send
    failed; callers need not care, it is for tests and logs.
    """
    address = _notify_address()
    if address is None or not states:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(_SEND_TIMEOUT_S)
            sock.sendto("\n".join(states).encode("utf-8"), address)
    except OSError:
        log.debug("sd_notify %r to %r failed", states, address, exc_info=True)
        return False
    return True


def _status_line(text: str) -> str:
    # A newline would end the STATUS= line and start another assignment.
    return "STATUS=" + " ".join(text.splitlines())


def ready(status: str | None = None) -> bool:
    """Say that the daemon serves: call it only after the socket is bound and the model loaded."""
    if status is None:
        return notify("READY=1")
    return notify("READY=1", _status_line(status))


def stopping() -> bool:
    """Say that shutdown began, so systemd shows "deactivating" instead of a hung service."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """Set the one-line status that ``systemctl status`` shows (e.g. "loading model ...")."""
    return notify(_status_line(text))


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings: half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled advises.

    None when no watchdog is asked for, the value is not a positive integer, or
    ``$WATCHDOG_PID`` names another process (the variables were inherited, not meant for us).
    """
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid is not None:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 2 / 1_000_000


async def watchdog_loop(interval: float) -> None:
    """Send ``WATCHDOG=1`` every ``interval`` seconds until cancelled.

    Run it as a task on the daemon's event loop (in the lifespan), not in a thread: a ping then
    proves the loop still schedules work, which is what "alive" means for this daemon.
    """
    if interval <= 0:
        raise ValueError(f"watchdog interval must be positive, got {interval!r}")
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)


class ServiceServer(uvicorn.Server):
    """uvicorn's server as a systemd service: says ``<name>: listening on URL`` once the
    socket is bound (tests and operators learn the port of ``--port 0`` from it), READY=1
    then, STOPPING=1 when a drain begins, and exit status 0 after a drained SIGTERM (uvicorn
    would re-raise the signal, so the process would die "by SIGTERM")."""

    def __init__(self, config: uvicorn.Config, name: str) -> None:
        super().__init__(config)
        self.name = name

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                print(f"{self.name}: listening on http://{host}:{port}", flush=True)
        ready("serving")

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()  # a drained stop is a clean stop

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        stopping()
        log.info("shutting down: draining in-flight requests for up to %.0fs",
                 self.config.timeout_graceful_shutdown or 0)
        await super().shutdown(sockets)
