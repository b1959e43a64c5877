"""Tests for appliance.systemd (sd_notify over real sockets) and the files in systemd/.

The notify tests bind real AF_UNIX datagram sockets, the way systemd listens, and check the
exact bytes that arrive. The unit tests run systemd's own tools on the shipped files when they
are installed (`make test` installs them on Debian) and skip with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import stat
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance import systemd

UNIT_DIR = Path(__file__).resolve().parents[2] / "systemd"
UNITS = ("appliance.service", "appliance-central.service")
INSTALLED_EXEC = "/opt/appliance/.venv/bin/appliance"


# --- sd_notify ------------------------------------------------------------------------------


@pytest.fixture(params=["path", "abstract"])
def notify_socket(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's, named by $NOTIFY_SOCKET."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        path = str(tmp_path / "notify")
        assert len(path) < 100, "AF_UNIX paths are limited to 108 bytes"
        sock.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
    else:
        name = f"appliance-test-{uuid.uuid4().hex}"
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    sock.settimeout(5)
    with sock:
        yield sock


def _nothing_queued(sock: socket.socket) -> bool:
    timeout = sock.gettimeout()
    sock.setblocking(False)  # a socket with a timeout would wait for data before recv()
    try:
        sock.recv(4096)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(timeout)
    return False


def test_notify_sends_the_states_as_one_datagram(notify_socket: socket.socket) -> None:
    assert systemd.notify("READY=1", "STATUS=serving") is True
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=serving"
    assert _nothing_queued(notify_socket)


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (lambda: systemd.ready(), b"READY=1"),
        (
            lambda: systemd.ready("listening on 127.0.0.1:8080"),
            b"READY=1\nSTATUS=listening on 127.0.0.1:8080",
        ),
        (lambda: systemd.stopping(), b"STOPPING=1"),
        (
            lambda: systemd.status("loading model gemma-3-270m"),
            b"STATUS=loading model gemma-3-270m",
        ),
        # A newline must not smuggle a second assignment (here a fake READY=1) into the datagram.
        (lambda: systemd.status("loading\nREADY=1"), b"STATUS=loading READY=1"),
    ],
    ids=["ready", "ready-with-status", "stopping", "status", "status-newline"],
)
def test_helpers_send_exact_bytes(
    notify_socket: socket.socket, send: Callable[[], bool], expected: bytes
) -> None:
    assert send() is True
    assert notify_socket.recv(4096) == expected
    assert _nothing_queued(notify_socket)


def test_nothing_is_sent_without_notify_socket(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert systemd.notify("READY=1") is False
    assert systemd.ready("x") is False
    assert systemd.stopping() is False
    assert systemd.status("x") is False
    assert _nothing_queued(notify_socket)


def test_empty_notify_socket_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert systemd.notify("READY=1") is False


def test_send_failure_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    with caplog.at_level(logging.DEBUG, logger="appliance.systemd"):
        assert systemd.ready() is False
    assert any("failed" in r.getMessage() for r in caplog.records)


# --- watchdog -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("10000000", None, 5.0),
        ("10000000", "self", 5.0),
        ("1", None, 0.0000005),
        ("10000000", "other", None),
        ("10000000", "not-a-pid", None),
        ("ten seconds", None, None),
        ("0", None, None),
        ("-10000000", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_watchdog_interval(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None, expected: float | None
) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    if usec is not None:
        monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid is not None:
        own = os.getpid()
        monkeypatch.setenv("WATCHDOG_PID", {"self": str(own), "other": str(own + 1)}.get(pid, pid))
    assert systemd.watchdog_interval() == expected


def test_watchdog_loop_pings_until_cancelled(notify_socket: socket.socket) -> None:
    notify_socket.setblocking(False)

    async def two_pings() -> list[bytes]:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(systemd.watchdog_loop(0.01))
        try:
            return [await loop.sock_recv(notify_socket, 4096) for _ in range(2)]
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    async def bounded() -> list[bytes]:
        return await asyncio.wait_for(two_pings(), timeout=5)

    assert asyncio.run(bounded()) == [b"WATCHDOG=1", b"WATCHDOG=1"]


@pytest.mark.parametrize("interval", [0.0, -1.0])
def test_watchdog_loop_rejects_a_non_positive_interval(interval: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        asyncio.run(systemd.watchdog_loop(interval))


# --- unit files -----------------------------------------------------------------------------


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(
            f"{tool} not installed: it comes with Debian's `systemd` package, which `make test`"
            " installs when it runs as root with apt-get"
        )
    return path


def _verify_problems(analyze: str, unit_dir: Path, units: dict[str, str]) -> list[str]:
    """Run `systemd-analyze verify` on ``units`` (name -> text) and return the real problems.

    Measured with systemd 252 in a container without systemd as PID 1, as root and as nobody:
    the unknown user `appliance` is not checked, and once ExecStart names an executable that
    exists the shipped units produce no output at all. verify exits 0 even for an unknown key or
    a value it cannot parse (it logs "..., ignoring" and goes on), so the output is what counts.
    Real problems name our unit (its path or its name); other lines are about the host's own
    units or directories (environmental) and are ignored.
    """
    fake_exec = unit_dir / "appliance"
    fake_exec.write_text("#!/bin/sh\nexit 0\n")
    fake_exec.chmod(0o755)
    paths = []
    for name, text in units.items():
        assert INSTALLED_EXEC in text, f"{name}: ExecStart no longer runs {INSTALLED_EXEC}"
        path = unit_dir / name
        path.write_text(text.replace(INSTALLED_EXEC, str(fake_exec)))
        paths.append(str(path))
    env = dict(
        os.environ, SYSTEMD_LOG_LEVEL="notice", SYSTEMD_LOG_COLOR="0", SYSTEMD_LOG_TARGET="console"
    )
    proc = subprocess.run(
        [analyze, "verify", "--man=no", *paths],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    lines = (proc.stdout + proc.stderr).splitlines()
    if proc.returncode != 0:
        return [f"exit status {proc.returncode}", *lines]
    return [line for line in lines if any(name in line for name in units)]


def test_units_verify(tmp_path: Path) -> None:
    analyze = _require("systemd-analyze")
    units = {name: (UNIT_DIR / name).read_text() for name in UNITS}
    assert _verify_problems(analyze, tmp_path, units) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("UMask=0077\n", "UMask=0077\nProtectEverything=yes\n"),
        ("WatchdogSec=30s", "WatchdogSec=thirty"),
        ("AF_UNIX\n", "AF_BOGUS\n"),
    ],
    ids=["unknown-key", "bad-time", "bad-family"],
)
def test_units_verify_catches_a_broken_unit(tmp_path: Path, old: str, new: str) -> None:
    """The check above must be able to fail: break one directive and expect it reported."""
    analyze = _require("systemd-analyze")
    text = (UNIT_DIR / "appliance.service").read_text()
    assert old in text
    broken = {"appliance.service": text.replace(old, new, 1)}
    assert _verify_problems(analyze, tmp_path, broken) != []


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_sysusers_and_tmpfiles_apply_to_a_scratch_root(tmp_path: Path) -> None:
    """Create the user and the directories under a scratch --root and check what came out."""
    sysusers = _require("systemd-sysusers")
    tmpfiles = _require("systemd-tmpfiles")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").touch()
    (root / "etc/group").touch()

    made = _run(sysusers, f"--root={root}", str(UNIT_DIR / "appliance.sysusers"))
    assert made.returncode == 0, made.stderr
    user = next(
        line.split(":")
        for line in (root / "etc/passwd").read_text().splitlines()
        if line.startswith("appliance:")
    )
    uid, gid, home = int(user[2]), int(user[3]), user[5]
    assert home == "/var/lib/appliance"
    assert uid < 1000 and gid < 1000, "a system user, below the login range"

    created = _run(tmpfiles, f"--root={root}", "--create", str(UNIT_DIR / "appliance.tmpfiles"))
    is_root = os.geteuid() == 0
    if is_root:
        assert created.returncode == 0, created.stderr
    else:
        # Only chown needs root; every other line would be a real error in the file.
        others = [
            line
            for line in created.stderr.splitlines()
            if not line.endswith("Operation not permitted")
        ]
        assert others == []

    expected = {
        "var/lib/appliance": (0o700, uid, gid),
        "var/lib/appliance-central": (0o700, uid, gid),
        "etc/appliance": (0o750, 0, gid),
        "etc/appliance/credentials": (0o700, 0, 0),
    }
    for rel, (mode, owner, group) in expected.items():
        st = (root / rel).stat()
        assert stat.S_ISDIR(st.st_mode), rel
        assert stat.S_IMODE(st.st_mode) == mode, rel
        if is_root:
            assert (st.st_uid, st.st_gid) == (owner, group), rel
