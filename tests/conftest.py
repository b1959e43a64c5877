"""Shared fixtures: installed model artifacts and real appliance server processes.

``make test`` installs the catalog's models once into ``.cache/test-data`` (sha256-verified, as
any site would) and points ``APPLIANCE_TEST_MODELS_DIR`` at its ``models/``. Each server under
test gets its own temporary data directory whose ``models/`` is hard-linked from there, so
nothing is downloaded or copied per test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS_DIR = REPO / ".cache" / "test-data" / "models"
_LISTENING = re.compile(r"appliance: listening on (http://\S+)")


def models_dir() -> Path:
    path = Path(os.environ.get("APPLIANCE_TEST_MODELS_DIR", DEFAULT_MODELS_DIR))
    if not (path / "gemma-3-270m").is_dir():
        pytest.fail(f"model artifacts are not installed in {path}: run `make test`, which "
                    "installs them with `appliance models install`", pytrace=False)
    return path


def link_tree(source: Path, target: Path) -> None:
    """Hard-link every file of ``source`` into ``target`` (copying across filesystems)."""
    for src in source.rglob("*"):
        dst = target / src.relative_to(source)
        if src.is_dir():
            dst.mkdir(mode=0o700, parents=True, exist_ok=True)
            continue
        dst.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            dst.write_bytes(src.read_bytes())


def make_data_dir(root: Path, with_models: bool = True) -> Path:
    data = root / "data"
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    if with_models:
        link_tree(models_dir(), data / "models")
    return data


def start_listening(command: list[str], env: dict[str, str], listening: re.Pattern[str],
                    lines: list[str], timeout: float
                    ) -> tuple[subprocess.Popen[str], str | None]:
    """Start ``command`` (output, stderr included, appended to ``lines`` by a reader thread)
    and wait for the line ``listening`` matches: the process and the URL from the pattern's
    first group, or None for the URL when it exited or ``timeout`` passed first."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, cwd=REPO)
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            match = listening.search(line)
            if match and not ready.is_set():
                found.append(match.group(1))
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.1):
        if proc.poll() is not None or time.monotonic() > deadline:
            return proc, None
    return proc, found[0]


class ServerProcess:
    """``appliance serve`` as a real child process on a free loopback port."""

    def __init__(self, data_dir: Path, config_text: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.config_path: Path | None = None
        if config_text is not None:
            self.config_path = data_dir.parent / "appliance.toml"
            self.config_path.write_text(config_text)
        self.extra_env = env or {}
        self.lines: list[str] = []
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "appliance.cli", "--data-dir", str(self.data_dir)]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return cmd + ["serve", "--port", "0"]

    def start(self, timeout: float = 90.0) -> ServerProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.extra_env}
        if "NOTIFY_SOCKET" not in self.extra_env:
            env.pop("NOTIFY_SOCKET", None)  # never notify the systemd running the tests
        self.proc, url = start_listening(self.command(), env, _LISTENING, self.lines, timeout)
        if url is None:
            self.stop()
            raise RuntimeError("server did not start:\n" + self.output)
        self.url = url
        return self

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def admin_key(self) -> str:
        return (self.data_dir / "secrets" / "admin.key").read_text().strip()

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 60)
        return httpx.Client(base_url=self.url,
                            headers={"authorization": f"Bearer {self.admin_key}"}, **kwargs)

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


def run_cli(*args: str, data_dir: Path | None = None, config: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "appliance.cli"]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    if config is not None:
        cmd += ["--config", str(config)]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One appliance on the embedded defaults, shared by the API tests."""
    data = make_data_dir(tmp_path_factory.mktemp("server"))
    proc = ServerProcess(data).start()
    yield proc
    proc.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Servers a test starts itself (with its own config); all stopped afterwards."""
    started: list[ServerProcess] = []
    yield started
    for proc in started:
        proc.stop(signal.SIGKILL)
