"""Central as a real child process, and its CLI, for the central tests and the edge agent's.

    with central_server(tmp_path / "central") as central:
        token = create_enrollment_token(central.data_dir, "box-1")
        publish_policy(central.data_dir, "version = 1\\n")
        httpx.post(central.url + "/v1/enroll", json={...})

The server binds a free loopback port (``--port 0``) unless given one; its URL is parsed from
the line ``central: listening on http://HOST:PORT``. Output (stdout and stderr) is drained by a
thread into ``CentralProcess.lines`` (kept across restarts) so the pipe never fills.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import start_listening

REPO = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"central: listening on (http://\S+)")


class CentralProcess:
    """``port`` 0 takes a free port at each start; a fixed one keeps the URL across restarts
    (a box keeps the URL it enrolled with)."""

    def __init__(self, data_dir: Path, config_path: Path | None, port: int = 0) -> None:
        self.data_dir = data_dir
        self.config_path = config_path
        self.port = port
        self.lines: list[str] = []
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> CentralProcess:
        """Start (or start again, after ``stop``) and wait for the listening line."""
        self.url = ""
        command = [sys.executable, "-m", "appliance.cli", "central", "serve", "--port",
                   str(self.port), "--data-dir", str(self.data_dir)]
        if self.config_path is not None:
            command += ["--config", str(self.config_path)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("NOTIFY_SOCKET", None)  # never notify the systemd running the tests
        self.proc, url = start_listening(command, env, _LISTENING, self.lines, timeout)
        if url is None:
            self.stop(signal.SIGKILL)
            raise RuntimeError("central did not start:\n" + self.output)
        self.url = url
        return self

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def repository(self) -> Path:
        return self.data_dir / "repository"

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "secrets" / "admin.token").read_text().strip()

    def admin_client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client for the admin API (``/v1/fleet``, ``/v1/usage/totals``)."""
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url,
                            headers={"authorization": f"Bearer {self.admin_token}"}, **kwargs)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


def write_config(data_dir: Path, config_text: str) -> Path:
    """Central's TOML next to (not inside) its data directory."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    path = data_dir.parent / f"{data_dir.name}.toml"
    path.write_text(config_text)
    return path


@contextlib.contextmanager
def central_server(data_dir: Path, config_text: str | None = None,
                   port: int = 0) -> Iterator[CentralProcess]:
    """Run ``appliance central serve`` on loopback (a free port unless ``port``); SIGTERM it
    on exit."""
    config = write_config(data_dir, config_text) if config_text is not None else None
    proc = CentralProcess(data_dir, config, port).start()
    try:
        yield proc
    finally:
        proc.stop()


def run_central_cli(*args: str, data_dir: Path, config: Path | None = None,
                    timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``appliance central ARGS --data-dir DATA_DIR [--config CONFIG]``."""
    command = [sys.executable, "-m", "appliance.cli", "central", *args,
               "--data-dir", str(data_dir)]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _checked(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    if result.returncode != 0:
        raise RuntimeError(f"central CLI failed ({result.returncode}):\n{result.stderr}"
                           f"{result.stdout}")
    value: dict[str, Any] = json.loads(result.stdout)
    return value


def create_enrollment_token(data_dir: Path, name: str, ttl_hours: float | None = None,
                            config: Path | None = None) -> str:
    """A fresh one-time token (``enroll-token create --json``)."""
    args = ["enroll-token", "create", "--name", name, "--json"]
    if ttl_hours is not None:
        args += ["--ttl-hours", str(ttl_hours)]
    token: str = _checked(run_central_cli(*args, data_dir=data_dir, config=config))["token"]
    return token


def publish_policy(data_dir: Path, policy: str | Path, config: Path | None = None
                   ) -> dict[str, Any]:
    """Publish a policy (TOML text, or a file) with ``policy publish --json``; returns its
    ``version``, ``sha256``, ``targets_version``. Raises ``RuntimeError`` if central refuses."""
    if isinstance(policy, str):
        path = data_dir.parent / f"policy-{time.monotonic_ns()}.toml"
        path.write_text(policy)
    else:
        path = policy
    return _checked(run_central_cli("policy", "publish", str(path), "--json",
                                    data_dir=data_dir, config=config))


class EnrolledBox:
    """A box enrolled with a running central, as the tests see it: its id, key and the root
    metadata it got; ``client()`` signs every request, ``updater()`` is python-tuf's client."""

    def __init__(self, central_url: str, box_id: str, key: Any, root: dict[str, Any]) -> None:
        self.central_url = central_url
        self.box_id = box_id
        self.key = key
        self.root = root

    def client(self, **kwargs: Any) -> httpx.Client:
        from sync.signing import BoxAuth

        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.central_url, auth=BoxAuth(self.box_id, self.key),
                            **kwargs)

    def updater(self, state_dir: Path) -> Any:
        """A fresh ``tuf.ngclient.Updater`` whose trust anchor is the enrollment root (saved
        into ``state_dir/metadata`` the first time); cached metadata in ``state_dir`` is kept
        across calls, as on a real box."""
        from sync.trust import SignedFetcher, make_updater, save_trusted_root

        metadata = state_dir / "metadata"
        if not (metadata / "root.json").exists():
            save_trusted_root(metadata, self.root)
        fetcher = SignedFetcher(self.central_url, self.box_id, self.key)
        return make_updater(metadata, state_dir / "targets", self.central_url, fetcher)


def enroll_box(central: CentralProcess, name: str, hardware: dict[str, Any] | None = None,
               audit_public_key: str | None = None) -> EnrolledBox:
    """Create a token with the CLI and enroll a new key with it over HTTP (with the box's
    audit public key when given)."""
    from sync.signing import generate_key, public_key_b64

    token = create_enrollment_token(central.data_dir, name, config=central.config_path)
    key = generate_key()
    body = {"token": token, "name": f"{name}.local", "public_key": public_key_b64(key),
            "hardware": hardware}
    if audit_public_key is not None:
        body["audit_public_key"] = audit_public_key
    response = httpx.post(central.url + "/v1/enroll", timeout=30, json=body)
    response.raise_for_status()
    body = response.json()
    return EnrolledBox(central.url, body["box_id"], key, body["root"])
