"""The daemon and CLI as an operator meets them: first start, restarts, bad config, tampered
models, systemd notifications."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import stat
import time
from pathlib import Path

import httpx

from tests.conftest import ServerProcess, make_data_dir, models_dir, run_cli

NO_EMBEDDINGS = '[local]\nembedding_model = ""\n'


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_creates_layout_and_admin_key_then_reuses_them(
        tmp_path: Path, fresh_server: list[ServerProcess]) -> None:
    data = make_data_dir(tmp_path)
    first = ServerProcess(data, NO_EMBEDDINGS).start()
    fresh_server.append(first)
    key = first.admin_key
    assert key.startswith("sk-appl-") and len(key) >= len("sk-appl-") + 43
    assert key in first.output  # printed once ...
    for sub in ("", "audit", "secrets", "models"):
        assert mode(data / sub) == 0o700, sub
    assert mode(data / "secrets" / "admin.key") == 0o600
    assert mode(data / "secrets" / "master.key") == 0o600
    with sqlite3.connect(data / "state.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        stored = [row[0] for row in db.execute("SELECT key_hash FROM api_keys")]
    assert len(stored) == 1 and key.encode() not in stored[0]  # only a keyed hash
    assert key.encode() not in (data / "state.db").read_bytes()
    assert first.stop() == 0

    second = ServerProcess(data, NO_EMBEDDINGS).start()
    fresh_server.append(second)
    assert second.admin_key == key
    assert key not in second.output  # ... and only once
    assert "bootstrap admin" not in second.output
    reply = httpx.get(second.url + "/v1/models", headers={"authorization": f"Bearer {key}"})
    assert reply.status_code == 200


def test_binds_loopback_by_default(tmp_path: Path, fresh_server: list[ServerProcess]) -> None:
    proc = ServerProcess(make_data_dir(tmp_path), NO_EMBEDDINGS).start()
    fresh_server.append(proc)
    assert proc.url.startswith("http://127.0.0.1:")


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    cases = {
        "[server]\nport = 'eighty'\n": "server.port",
        "[server]\nprot = 8080\n": "server.prot",
        "[limits]\nmax_messages = 0\n": "limits.max_messages",
        "[nonsense]\n": "nonsense",
        "[server\n": "not valid TOML",
    }
    for text, needle in cases.items():
        path = tmp_path / "bad.toml"
        path.write_text(text)
        checked = run_cli("config", "check", str(path))
        assert checked.returncode == 1, text
        assert needle in checked.stderr, (text, checked.stderr)
        assert "Traceback" not in checked.stderr
        served = run_cli("serve", config=path, data_dir=tmp_path / "data")
        assert served.returncode == 1 and needle in served.stderr
    good = tmp_path / "good.toml"
    good.write_text("[server]\nport = 9000\nshutdown_grace_seconds = 5\n[local]\npool_size = 2\n")
    checked = run_cli("config", "check", str(good))
    assert checked.returncode == 0, checked.stderr


def test_tampered_model_is_refused_at_install_and_at_start(
        tmp_path: Path, fresh_server: list[ServerProcess]) -> None:
    gguf = models_dir() / "gemma-3-270m" / "gemma-3-270m-q4_k_m.gguf"
    tampered = tmp_path / "tampered.gguf"
    with gguf.open("rb") as src, tampered.open("wb") as dst:
        dst.write(src.read(4096))
        dst.write(b"\x00")
        src.seek(4097)
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    data = tmp_path / "data"
    refused = run_cli("models", "install", "gemma-3-270m", "--from", str(tampered),
                      data_dir=data)
    assert refused.returncode == 1
    assert "sha256" in refused.stderr.lower() and "Traceback" not in refused.stderr
    assert not (data / "models" / "gemma-3-270m" / "gemma-3-270m-q4_k_m.gguf").exists()

    # A model replaced on disk after installation is caught before it is loaded.
    data = make_data_dir(tmp_path / "second")
    installed = data / "models" / "gemma-3-270m" / "gemma-3-270m-q4_k_m.gguf"
    installed.unlink()  # break the hard link, then write the tampered bytes in its place
    installed.write_bytes(tampered.read_bytes())
    proc = ServerProcess(data, NO_EMBEDDINGS)
    fresh_server.append(proc)
    try:
        proc.start(timeout=60)
        raise AssertionError("a server with a tampered model must not start")
    except RuntimeError:
        pass
    assert proc.proc is not None and proc.proc.returncode == 1
    assert "sha256" in proc.output.lower()
    verify = run_cli("models", "verify", "gemma-3-270m", data_dir=data)
    assert verify.returncode == 1 and "mismatch" in verify.stdout


def test_models_list_install_verify_are_idempotent(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path)
    listed = run_cli("models", "list", data_dir=data)
    assert listed.returncode == 0
    assert "gemma-3-270m" in listed.stdout and "all-minilm-l6-v2" in listed.stdout
    again = run_cli("models", "install", "gemma-3-270m", "cl100k_base", data_dir=data)
    assert again.returncode == 0, again.stderr
    assert "already installed" in again.stderr
    verified = run_cli("models", "verify", data_dir=data)
    assert verified.returncode == 0 and "mismatch" not in verified.stdout
    unknown = run_cli("models", "install", "gpt-5", data_dir=data)
    assert unknown.returncode == 1 and "gemma-3-270m" in unknown.stderr


def test_hardware_report(tmp_path: Path) -> None:
    text = run_cli("hardware", data_dir=tmp_path)
    assert text.returncode == 0 and "profile" in text.stdout.lower()
    as_json = run_cli("hardware", "--json", data_dir=tmp_path)
    report = json.loads(as_json.stdout)
    assert report["hardware"]["cores_logical"] >= 1
    assert report["profile"]["pool_size"] >= 1 and report["profile"]["reason"]


def test_systemd_ready_after_bind_and_watchdog(tmp_path: Path,
                                               fresh_server: list[ServerProcess]) -> None:
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(90)
    proc = ServerProcess(make_data_dir(tmp_path), NO_EMBEDDINGS, env={
        "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"})
    fresh_server.append(proc)
    proc.start()
    messages: list[str] = []
    while not any("READY=1" in m for m in messages):
        messages.append(sock.recv(4096).decode())
    # READY=1 came after the socket was bound and the model loaded: both hold right now, and
    # "loading models" was announced before it.
    assert any("STATUS=loading models" in m for m in messages[:-1])
    ready = httpx.get(proc.url + "/readyz").json()
    assert ready["checks"]["model_loaded"] is True
    pings = 0
    deadline = time.monotonic() + 10
    while pings < 2 and time.monotonic() < deadline:
        if sock.recv(4096).decode() == "WATCHDOG=1":
            pings += 1
    assert pings == 2
    assert proc.stop() == 0
    sock.settimeout(5)
    rest = []
    try:
        while True:
            rest.append(sock.recv(4096).decode())
    except TimeoutError:
        pass
    assert "STOPPING=1" in rest
    sock.close()
    os.unlink(address)
