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
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
        found = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                match = _LISTENING.search(line)
                if match:
                    self.url = match.group(1)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start:\n" + self.output)
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
