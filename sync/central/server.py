"""Central's lifecycle: prepare the data directory, serve, keep the metadata fresh, stop.

Order at start: data directory (0700), database, TUF repository (keys and first metadata on
the very first start), admin token; then the socket is bound, and only then ``READY=1`` to
systemd and the line ``central: listening on http://HOST:PORT``. While it runs, a task
re-signs metadata before it expires (unless ``[tuf] auto_refresh_timestamp = false``). On
SIGTERM uvicorn stops accepting, in-flight requests get ``server.shutdown_grace_seconds``,
and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn

from appliance import systemd
from sync.central.app import build_app
from sync.central.auth import BoxAuthenticator
from sync.central.config import CentralConfig
from sync.central.repository import Repository, RepositoryError
from sync.central.state import CentralDataDir, CentralDB

log = logging.getLogger("sync.central.server")


class Central:
    """Everything the handlers use, opened by ``prepare`` and closed by ``close``."""

    def __init__(self, config: CentralConfig, data_dir: Path) -> None:
        self.config = config
        self.data = CentralDataDir(data_dir)
        self.repository = Repository(self.data, config.tuf)
        self._db: CentralDB | None = None
        self._authenticator: BoxAuthenticator | None = None
        self.admin_token = ""

    @property
    def db(self) -> CentralDB:
        assert self._db is not None, "Central.prepare() was not called"
        return self._db

    @property
    def authenticator(self) -> BoxAuthenticator:
        assert self._authenticator is not None, "Central.prepare() was not called"
        return self._authenticator

    def prepare(self) -> bool:
        """Open everything; True when the admin token was created now."""
        self.data.create()
        self._db = CentralDB(self.data.state_db)
        self._authenticator = BoxAuthenticator(self._db, self.config.auth.max_clock_skew_seconds)
        if self.repository.init():
            log.info("created the TUF repository: root %d of %d keys in %s",
                     self.config.tuf.root_threshold, self.config.tuf.root_keys,
                     self.data.tuf_keys)
        created = not self.data.admin_token_file.exists()
        token = self.data.admin_token(create=True)
        assert token is not None
        self.admin_token = token
        return created

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def refresh_interval(config: CentralConfig) -> float:
    """Check often enough that the shortest-lived role (timestamp) is re-signed in time."""
    return max(0.5, min(60.0, config.tuf.timestamp_expiry_seconds / 8))


async def _refresh_loop(central: Central, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            resigned = await asyncio.to_thread(central.repository.refresh)
        except (RepositoryError, OSError) as exc:
            log.error("could not re-sign expiring TUF metadata: %s", exc)
            continue
        if resigned:
            log.info("re-signed TUF metadata before expiry: %s", ", ".join(resigned))


def _lifespan(central: Central):  # type: ignore[no-untyped-def]
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        interval = systemd.watchdog_interval()
        if interval is not None:
            tasks.append(asyncio.create_task(systemd.watchdog_loop(interval)))
        if central.config.tuf.auto_refresh_timestamp:
            tasks.append(asyncio.create_task(
                _refresh_loop(central, refresh_interval(central.config))))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            central.close()

    return lifespan


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def serve(config: CentralConfig, data_dir: Path) -> int:
    configure_logging(config.server.log_level)
    central = Central(config, data_dir)
    try:
        created = central.prepare()
        if config.tuf.auto_refresh_timestamp:
            central.repository.refresh()
    except (RepositoryError, OSError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        central.close()
        return 1
    if created:
        print(f"central: created the admin token in {central.data.admin_token_file}",
              flush=True)
    app = build_app(central, _lifespan(central))
    uv_config = uvicorn.Config(
        app, host=config.server.host, port=config.server.port, lifespan="on",
        access_log=False, log_config=None, server_header=False, proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(config.server.shutdown_grace_seconds),
        timeout_keep_alive=5, log_level=config.server.log_level)
    server = systemd.ServiceServer(uv_config, "central")
    server.run()
    central.close()  # the lifespan closed it already unless the start failed
    return 0 if server.started else 1
