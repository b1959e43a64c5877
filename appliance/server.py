"""The daemon's lifecycle: start, serve, drain, stop.

Order at start: data directory and database (``Runtime.prepare``), then models, then the
socket is bound, and only then ``READY=1`` to systemd and the "listening" line. On
SIGTERM uvicorn stops accepting, in-flight requests (streams included) get
``server.shutdown_grace_seconds`` to finish, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn

from appliance import systemd
from appliance.config import Config, ConfigError
from appliance.http.app import build_app
from appliance.audit import AuditLocked
from appliance.audit.crypto import AuditKeyError
from appliance.runtime import Runtime
from hardware import ProfileError
from sync.enrollment import EnrollmentError
from local_models.errors import ArtifactError

log = logging.getLogger("appliance.server")


def _lifespan(runtime: Runtime):  # type: ignore[no-untyped-def]
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        watchdog = None
        interval = systemd.watchdog_interval()
        if interval is not None:
            watchdog = asyncio.create_task(systemd.watchdog_loop(interval))
        outbox = asyncio.create_task(_drain_admin_events(runtime))
        if runtime.sync_agent is not None:
            await runtime.sync_agent.start()
        try:
            yield
        finally:
            outbox.cancel()
            if runtime.sync_agent is not None:
                await runtime.sync_agent.stop()
            await runtime.close_providers()
            try:  # whatever the CLI queued since the last round, before the "stop" event
                await runtime.drain_admin_events()
            except Exception:  # noqa: BLE001 - the rows stay queued for the next start
                log.exception("could not move queued admin events into the audit log")
            if watchdog is not None:
                watchdog.cancel()
            await asyncio.to_thread(runtime.close)

    return lifespan


async def _drain_admin_events(runtime: Runtime, every: float = 2.0) -> None:
    """Changes made with the CLI while the daemon runs reach the audit log within ``every``
    seconds (and at the next start when it was stopped)."""
    while True:
        try:
            await runtime.drain_admin_events()
        except Exception:  # noqa: BLE001 - retried next round; the rows stay queued
            log.exception("could not move queued admin events into the audit log")
        await asyncio.sleep(every)


class _LogFormatter(logging.Formatter):
    """The standard formatter with its timestamp formatted once per second, not per line: the
    access log writes a line per request, and ``strftime`` was a third of its cost."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:  # the same string the base class makes, cached
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        msec_format = self.default_msec_format
        return self._stamp if msec_format is None else msec_format % (self._stamp, record.msecs)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    # The format uses none of the caller's file and line, thread or process: not collecting
    # them saves a frame walk and three lookups per line (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # httpx logs every upstream request at INFO: a line per request that costs ~5% of the
    # gateway's CPU and repeats what the access log says. Warnings still come through.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))


def serve(config: Config, data_dir: Path) -> int:
    configure_logging(config.server.log_level)
    try:
        runtime = Runtime(config, data_dir)
    except ConfigError as exc:  # e.g. a policy file that fails validation
        log.error("cannot start: %s", exc)
        return 1
    admin_key = runtime.prepare()
    try:
        runtime.connect_providers()
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        runtime.close()
        return 1
    try:
        runtime.start_writers()
        runtime.start_audit()
    except (AuditLocked, AuditKeyError, OSError) as exc:
        log.error("cannot start: audit log: %s", exc)
        runtime.close()
        return 1
    if admin_key is not None:
        print("appliance: created the bootstrap admin API key (shown once; also stored in "
              f"{runtime.data.admin_key_file}):\n  {admin_key}", flush=True)
    # Models load before uvicorn binds the socket (uvicorn binds only after the lifespan has
    # started anyway); a missing or tampered model is a clear message and exit code 1.
    systemd.status("loading models")
    try:
        runtime.load_models()
        runtime.check_routes()
    except (ArtifactError, ProfileError, ValueError, OSError, ConfigError) as exc:
        log.error("cannot start: %s", exc)
        runtime.close()
        return 1
    try:
        runtime.prepare_sync()
    except EnrollmentError as exc:
        log.error("cannot start: sync: %s", exc)
        runtime.close()
        return 1
    app = build_app(runtime, _lifespan(runtime))
    uv_config = uvicorn.Config(
        app, host=config.server.host, port=config.server.port, lifespan="on",
        access_log=False, log_config=None, server_header=False, proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(config.server.shutdown_grace_seconds),
        timeout_keep_alive=5, log_level=config.server.log_level,
        http="httptools", loop="uvloop")  # C parser and loop: ~30% less CPU per request
    server = systemd.ServiceServer(uv_config, "appliance")
    server.run()
    # uvicorn sets should_exit on SIGTERM/SIGINT; a failed start leaves started False.
    return 0 if server.started else 1
