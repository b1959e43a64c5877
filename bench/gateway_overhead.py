"""Gateway overhead: what the appliance adds to each request, against a fast mock upstream.

    .venv/bin/python bench/gateway_overhead.py [--duration 5] [--warmup 2] [--connections 1 32]
        [--with-litellm] [--audit strict|relaxed] [--json FILE]

Load generator: ``wrk`` (Debian package ``wrk``: ``apt-get install -y wrk``) with
``bench/wrk_post.lua``, which POSTs a fixed body and checks every answer (status 200 and, in
the body, a marker: ``chat.completion`` for a plain answer, ``[DONE]`` for a stream).

Processes, pinned with ``taskset``: the gateway under test on core 0; the mock upstream
(``tests/mock_upstream``) and wrk on core 1. One wrk thread; 1 and 32 connections.

Rows, for a non-streaming chat request and a streaming one (``stream_options.include_usage``):

- direct: wrk straight to the mock (the floor);
- appliance: ``appliance serve`` with every feature on: a client key under tenant /
  department / app, classification (the prompt is public, so the zone policy lets it reach
  the "cloud" provider), limits (rpm/tpm on the key, budgets on tenant and department, all
  set far too high to refuse), the usage ledger (the model has a price) and the audit log in
  strict durability (each answer waits for its record's fdatasync; ``--audit relaxed`` for the
  other mode, where records are flushed every 200 ms);
- litellm (``--with-litellm``): LiteLLM's proxy 1.106.2, one worker, installed into
  ``.cache/litellm-venv`` on first use (a large install; if it fails the bench says so and
  goes on without it).

Figures: requests/s and p50/p99 latency (wrk's ``--latency`` distribution), the latency the
gateway adds (through - direct), the ratio of requests/s (through / direct), and the gateway's
CPU per request (its process tree's utime+stime over the measured run / requests). A row with
any non-2xx answer, socket error or bad body is flagged ERRORS, not reported as throughput, and
the bench exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _support import default_models_dir, link_tree, wait_for_line

REPO = Path(__file__).resolve().parent.parent

LUA = Path(__file__).resolve().parent / "wrk_post.lua"
GATEWAY_CPU, LOAD_CPU = 0, 1
UPSTREAM_KEY = "sk-bench-upstream-0123456789"
LITELLM_KEY = "sk-bench-litellm-master"
LITELLM_VERSION = "1.106.2"
LITELLM_VENV = REPO / ".cache" / "litellm-venv"
MODEL = "gpt-4o-mini"
#: The classifier finds nothing here: public, so policy lets it reach the "cloud" zone.
PROMPT = "Name three primary colours."
MAX_TOKENS = 16
START_TIMEOUT_S = 120.0
KINDS = {
    "chat": ({"model": MODEL, "messages": [{"role": "user", "content": PROMPT}],
              "max_tokens": MAX_TOKENS}, "chat.completion"),
    "stream": ({"model": MODEL, "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": MAX_TOKENS, "stream": True,
                "stream_options": {"include_usage": True}}, "[DONE]"),
}


# processes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    url: str  # the chat completions URL
    auth: str  # Authorization header value
    pid: int | None  # root of the process tree whose CPU is counted (None: not counted)


def tree_pids(root: int) -> list[int]:
    """``root`` and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def cpu_seconds(root: int | None) -> float:
    """utime + stime of a process tree (threads included)."""
    if root is None:
        return 0.0
    total = 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _stop(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http_json(method: str, url: str, key: str, body: Any = None) -> tuple[int, dict[str, str],
                                                                          bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "authorization": f"Bearer {key}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, \
                response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def appliance_config(upstream: str, durability: str = "strict") -> str:
    return f"""
[local]
embedding_model = ""
[[providers]]
name = "openai"
kind = "openai"
zone = "cloud"
base_url = "{upstream}/v1"
models = ["{MODEL}"]
credential = "env:BENCH_UPSTREAM_KEY"
[limits_policy.prices.{MODEL}]
input = 150000
output = 600000
[audit]
durability = "{durability}"
"""


@contextlib.contextmanager
def appliance(upstream: str, models: Path, workdir: Path, durability: str = "strict"
              ) -> Iterator[Target]:
    """``appliance serve`` on core 0 with a fresh data dir and a client key whose limits are
    set far too high to refuse; yields the target."""
    data_dir = workdir / "appliance-data"
    link_tree(models, data_dir / "models")
    config = workdir / "appliance.toml"
    config.write_text(appliance_config(upstream, durability), encoding="utf-8")
    log_path = workdir / "appliance.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        ["taskset", "-c", str(GATEWAY_CPU), sys.executable, "-m", "appliance.cli", "--config",
         str(config), "--data-dir", str(data_dir), "serve", "--port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True,
        env={**os.environ, "BENCH_UPSTREAM_KEY": UPSTREAM_KEY})
    try:
        base = wait_for_line(proc, "appliance: listening on ", log_path, START_TIMEOUT_S)
        admin_key = (data_dir / "secrets" / "admin.key").read_text().splitlines()[0].strip()

        def admin(method: str, path: str, body: Any) -> Any:
            status, _, raw = http_json(method, base + "/admin/v1" + path, admin_key, body)
            if status >= 300:
                raise RuntimeError(f"admin {method} {path}: HTTP {status}: {raw[:300]!r}")
            return json.loads(raw)

        tenant = admin("POST", "/tenants", {"name": "Bench"})
        dept = admin("POST", "/departments", {"name": "Load", "tenant_id": tenant["id"]})
        app = admin("POST", "/apps", {"name": "wrk", "department_id": dept["id"]})
        key = admin("POST", "/keys", {"name": "wrk", "app_id": app["id"]})
        never = {"rpm": 10**9, "tpm": 10**12, "monthly_budget_micros": 10**15}
        admin("PUT", f"/limits/tenant/{tenant['id']}", never)
        admin("PUT", f"/limits/department/{dept['id']}", never)
        admin("PUT", f"/limits/app/{app['id']}", never)
        admin("PUT", f"/limits/key/{key['id']}", never)
        yield Target("appliance", base + "/v1/chat/completions", f"Bearer {key['key']}",
                     proc.pid)
    finally:
        _stop(proc)
        log.close()


@contextlib.contextmanager
def mock(workdir: Path) -> Iterator[Target]:
    """``tests.mock_upstream.server`` on core 1, its output to a file.

    Not ``tests.mock_upstream.mock_upstream()``: that one pipes the server's output and reads
    only the first line, so once aiohttp has logged 64 KiB of tracebacks (wrk cuts its
    in-flight streams at the end of every run) the mock blocks in a write to stderr and stops
    answering."""
    log_path = workdir / "mock.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["taskset", "-c", str(LOAD_CPU), sys.executable, "-m",
             "tests.mock_upstream.server", "--port", "0"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True,
            env={**os.environ, "MOCK_UPSTREAM_KEY": UPSTREAM_KEY, "PYTHONUNBUFFERED": "1"})
        try:
            url = wait_for_line(proc, "mock-upstream: listening on ", log_path, START_TIMEOUT_S)
            # Nothing more comes on stdout; stderr goes to the file, so nothing can block.
            yield Target("direct", url + "/v1/chat/completions", f"Bearer {UPSTREAM_KEY}",
                         proc.pid)
        finally:
            _stop(proc, timeout=10)


# LiteLLM -----------------------------------------------------------------------------------


def litellm_installed() -> str | None:
    python = LITELLM_VENV / "bin" / "python"
    if not python.exists():
        return None
    probe = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                            "print(m.version('litellm'))"], capture_output=True, text=True)
    version = probe.stdout.strip()
    return version if probe.returncode == 0 and (LITELLM_VENV / "bin/litellm").exists() \
        else None


def ensure_litellm() -> str | None:
    """LiteLLM's proxy in its own venv; returns its version, or None (having said why)."""
    version = litellm_installed()
    if version == LITELLM_VERSION:
        return version
    print(f"gateway_overhead: installing litellm[proxy]=={LITELLM_VERSION} into "
          f"{LITELLM_VENV} (large: several minutes)...", file=sys.stderr)
    log = LITELLM_VENV.parent / "litellm-install.log"
    LITELLM_VENV.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        steps = [["python3", "-m", "venv", str(LITELLM_VENV)],
                 [str(LITELLM_VENV / "bin/pip"), "install", "--quiet",
                  f"litellm[proxy]=={LITELLM_VERSION}"]]
        for step in steps:
            try:
                done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
            except (OSError, subprocess.TimeoutExpired) as exc:
                print(f"gateway_overhead: LiteLLM install failed ({exc}); going on without "
                      "it", file=sys.stderr)
                return None
            if done.returncode != 0:
                tail = log.read_text(errors="replace")[-800:]
                print(f"gateway_overhead: LiteLLM install failed (exit {done.returncode}; "
                      f"log {log}); going on without it:\n{tail}", file=sys.stderr)
                return None
    return litellm_installed()


@contextlib.contextmanager
def litellm(upstream: str, workdir: Path) -> Iterator[Target]:
    config = workdir / "litellm.yaml"
    config.write_text(f"""model_list:
  - model_name: {MODEL}
    litellm_params:
      model: openai/{MODEL}
      api_base: {upstream}/v1
      api_key: {UPSTREAM_KEY}
general_settings:
  master_key: {LITELLM_KEY}
""")
    port = _free_port()
    log_path = workdir / "litellm.log"
    log = log_path.open("wb")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MODE": "PRODUCTION"}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.Popen(
        ["taskset", "-c", str(GATEWAY_CPU), str(LITELLM_VENV / "bin/litellm"), "--config",
         str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"LiteLLM did not start (exit {proc.poll()}):\n{tail}")
            try:
                if http_json("GET", base + "/health/liveliness", LITELLM_KEY)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        yield Target("litellm", base + "/v1/chat/completions", f"Bearer {LITELLM_KEY}",
                     proc.pid)
    finally:
        _stop(proc)
        log.close()


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])



# wrk ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    target: str
    kind: str
    connections: int
    duration_s: float
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    non_2xx: int = 0
    socket_errors: int = 0
    bad_bodies: int = 0
    checked: int = 0
    gateway_cpu_us_per_request: float | None = None
    gateway_cores: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(text: str, row: Row) -> None:
    def grab(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, text, re.MULTILINE)

    if m := grab(r"^\s*(\d+) requests in"):
        row.requests = int(m.group(1))
    if m := grab(r"^Requests/sec:\s+([\d.]+)"):
        row.rps = float(m.group(1))
    for pct, attr in (("50", "p50_ms"), ("99", "p99_ms")):
        if m := grab(rf"^\s+{pct}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$"):
            setattr(row, attr, float(m.group(1)) * _UNITS[m.group(2)])
    if m := grab(r"Non-2xx or 3xx responses:\s+(\d+)"):
        row.non_2xx = int(m.group(1))
    if m := grab(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        row.socket_errors = sum(int(g) for g in m.groups())
    if m := grab(r"^bench_checked (\d+) bench_bad (\d+)"):
        row.checked, row.bad_bodies = int(m.group(1)), int(m.group(2))
    else:
        row.errors.append("wrk printed no body check (Lua script not run?)")
    if row.requests == 0 or row.rps == 0.0 or row.p50_ms == 0.0:
        row.errors.append(f"no requests measured; wrk said: {text[-400:]!r}")
    if row.non_2xx:
        row.errors.append(f"{row.non_2xx} non-2xx")
    if row.socket_errors:
        row.errors.append(f"{row.socket_errors} socket errors")
    if row.bad_bodies:
        row.errors.append(f"{row.bad_bodies} bad bodies")


def run_wrk(target: Target, kind: str, connections: int, duration: float,
            body_file: Path) -> tuple[str, int]:
    _, expect = KINDS[kind]
    env = {**os.environ, "WRK_BODY_FILE": str(body_file), "WRK_AUTH": target.auth,
           "WRK_EXPECT": expect}
    command = ["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", f"-c{connections}",
               f"-d{duration:g}s", "--timeout", "10s", "--latency", "-s", str(LUA), target.url]
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=duration + 60)
    return done.stdout + done.stderr, done.returncode


def merge(rounds: list[Row]) -> Row:
    """One row from the same row measured in several rounds: the median of each figure
    (the box is shared and its speed drifts between runs), requests and checks summed."""
    first = rounds[0]
    row = Row(first.target, first.kind, first.connections, first.duration_s)
    good = [r for r in rounds if r.ok]
    row.errors = [e for r in rounds for e in r.errors]
    row.requests = sum(r.requests for r in rounds)
    row.checked = sum(r.checked for r in rounds)
    if good:
        row.rps = statistics.median(r.rps for r in good)
        row.p50_ms = statistics.median(r.p50_ms for r in good)
        row.p99_ms = statistics.median(r.p99_ms for r in good)
        cpus = [r.gateway_cpu_us_per_request for r in good
                if r.gateway_cpu_us_per_request is not None]
        row.gateway_cpu_us_per_request = statistics.median(cpus) if cpus else None
    return row


def measure(target: Target, kind: str, connections: int, duration: float, warmup: float,
            body_file: Path) -> Row:
    row = Row(target.name, kind, connections, duration)
    if warmup > 0:
        run_wrk(target, kind, connections, warmup, body_file)
    cpu0 = cpu_seconds(target.pid)
    out, rc = run_wrk(target, kind, connections, duration, body_file)
    cpu1 = cpu_seconds(target.pid)
    parse_wrk(out, row)
    if rc != 0:
        row.errors.append(f"wrk exit {rc}: {out[-300:]}")
    if target.pid is not None and row.requests:
        row.gateway_cpu_us_per_request = (cpu1 - cpu0) * 1e6 / row.requests
        row.gateway_cores = (cpu1 - cpu0) / duration
    return row


# checks and report -------------------------------------------------------------------------


def preflight(target: Target) -> None:
    """One request of each kind, checked by hand, before any load: fail loudly and early."""
    key = target.auth.removeprefix("Bearer ")
    for kind, (body, expect) in KINDS.items():
        status, headers, raw = http_json("POST", target.url, key, body)
        if status != 200 or expect.encode() not in raw:
            raise RuntimeError(f"{target.name} {kind}: HTTP {status}: {raw[:500]!r}")
        if kind == "stream" and b'"usage"' not in raw:
            raise RuntimeError(f"{target.name} stream: no usage chunk: {raw[-500:]!r}")
        if target.name == "appliance" and headers.get("x-appliance-zone") != "cloud":
            raise RuntimeError(f"appliance {kind}: not routed to the cloud mock: {headers}")


def versions(litellm_version: str | None) -> dict[str, str]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    out = {"appliance": version("appliance"), "python": platform.python_version(),
           "uvicorn": version("uvicorn"), "starlette": version("starlette"),
           "httpx": version("httpx"), "httpx-aiohttp": version("httpx-aiohttp"),
           "aiohttp (mock)": version("aiohttp"),
           "wrk": (wrk.stdout + wrk.stderr).splitlines()[0].split(" [")[0]}
    if litellm_version:
        out["litellm"] = litellm_version
    return out


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def report(info: dict[str, Any], rows: list[Row]) -> None:
    print("Gateway overhead: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    print(f"CPU: {info['cpu']} ({info['cores']} cores); gateway on core {GATEWAY_CPU}, mock and "
          f"wrk (1 thread) on core {LOAD_CPU}; {info['duration_s']:g} s per row after "
          f"{info['warmup_s']:g} s warm-up")
    print(f"request: POST /v1/chat/completions {json.dumps(KINDS['chat'][0])}")
    print("  stream rows add \"stream\": true, \"stream_options\": {\"include_usage\": true}")
    print("appliance: client key under tenant/department/app, classification, limits "
          "(rpm/tpm/budgets, never refusing),\n  usage ledger, audit "
          f"({info['audit_durability']} durability)\n")
    head = (f"{'kind':7}{'conns':>6} {'target':10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'+p50 ms':>9}{'+p99 ms':>9}{'rps ratio':>10}{'cpu us/req':>11}{'checked':>9}")
    print(head)
    print("-" * len(head))
    floor = {(r.kind, r.connections): r for r in rows if r.target == "direct"}
    for row in rows:
        base = floor.get((row.kind, row.connections))
        lead = f"{row.kind:7}{row.connections:6d} {row.target:10}"
        if not row.ok:
            print(f"{lead}ERRORS: {'; '.join(row.errors)} (requests {row.requests})")
            continue
        cpu = (f"{row.gateway_cpu_us_per_request:11.0f}"
               if row.gateway_cpu_us_per_request is not None else f"{'':11}")
        if row.target != "direct" and base is not None and base.ok:
            extra = (f"{row.p50_ms - base.p50_ms:+9.2f}{row.p99_ms - base.p99_ms:+9.2f}"
                     f"{row.rps / base.rps:10.3f}")
        else:
            extra = f"{'':9}{'':9}{'':10}"
        print(f"{lead}{row.rps:9.0f}{row.p50_ms:9.2f}{row.p99_ms:9.2f}{extra}{cpu}"
              f"{row.checked:9d}")
    peers = {(r.kind, r.connections): r for r in rows if r.target == "litellm" and r.ok}
    for row in rows:
        peer = peers.get((row.kind, row.connections))
        if row.target == "appliance" and row.ok and peer is not None:
            print(f"{row.kind} at {row.connections} connection(s): the appliance does "
                  f"{row.rps / peer.rps:.1f}x LiteLLM's requests/s")
    if info.get("rounds", 1) > 1:
        print(f"figures: medians of {info['rounds']} rounds (the rows of a round run one after "
              "another, rounds in turn)")
    print("\n+p50/+p99: through - direct (added latency). rps ratio: through / direct. "
          "cpu us/req: the gateway\nprocess tree's CPU time per request (utime+stime; direct "
          "rows: the mock's). checked: answers the\nLua script checked (status 200 and body "
          "marker).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per row (5)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per row (2)")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    parser.add_argument("--with-litellm", action="store_true",
                        help=f"also measure LiteLLM's proxy {LITELLM_VERSION} (installed into "
                             f"{LITELLM_VENV.relative_to(REPO)} on first use)")
    parser.add_argument("--models-dir", type=Path, default=default_models_dir(),
                        help="installed models tree, hard-linked into the daemon's data dir")
    parser.add_argument("--audit", choices=["strict", "relaxed"], default="strict",
                        help="the appliance's audit durability (strict, the default: each "
                             "answer waits for its record's fdatasync)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every row this many times, in turn, and report medians")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results here")
    args = parser.parse_args(argv)

    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        print(f"gateway_overhead: {' and '.join(missing)} not found. Install it with\n"
              f"    sudo apt-get install -y {'wrk' if 'wrk' in missing else ''}"
              f"{' util-linux' if 'taskset' in missing else ''}\n(Debian package `wrk`, a C "
              "HTTP load generator; a Python one on this box would measure Python).",
              file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("gateway_overhead: needs 2 cores (gateway on 0, mock and wrk on 1)",
              file=sys.stderr)
        return 2
    if not (args.models_dir / "gemma-3-270m").is_dir():
        print(f"gateway_overhead: no installed models in {args.models_dir} (the daemon loads "
              "its local model at start): run `make test-models` or pass --models-dir",
              file=sys.stderr)
        return 2
    litellm_version = ensure_litellm() if args.with_litellm else None

    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-gateway-")))
        # The direct rows count the mock's CPU: it must cost far less than a gateway.
        direct = stack.enter_context(mock(tmp))
        upstream = direct.url.removesuffix("/v1/chat/completions")
        targets = [direct]
        print("gateway_overhead: starting the appliance...", file=sys.stderr)
        targets.append(stack.enter_context(appliance(upstream, args.models_dir, tmp,
                                                     args.audit)))
        if litellm_version:
            print("gateway_overhead: starting LiteLLM...", file=sys.stderr)
            try:
                targets.append(stack.enter_context(litellm(upstream, tmp)))
            except RuntimeError as exc:
                print(f"gateway_overhead: {exc}\ngoing on without LiteLLM", file=sys.stderr)
                litellm_version = None
        for target in targets:
            preflight(target)
        bodies = {}
        for kind, (body, _) in KINDS.items():
            bodies[kind] = tmp / f"{kind}.json"
            bodies[kind].write_text(json.dumps(body))
        measured: dict[tuple[str, int, str], list[Row]] = {}
        for round_number in range(args.rounds):
            for kind in args.kinds:
                for connections in args.connections:
                    for target in targets:
                        print(f"  round {round_number + 1}/{args.rounds}: {kind}, "
                              f"{connections} connection(s), {target.name}...", file=sys.stderr)
                        measured.setdefault((kind, connections, target.name), []).append(
                            measure(target, kind, connections, args.duration, args.warmup,
                                    bodies[kind]))
        rows = [merge(rounds) for rounds in measured.values()]

    info = {"versions": versions(litellm_version), "cpu": cpu_name(), "cores": os.cpu_count(),
            "kernel": platform.release(), "duration_s": args.duration,
            "warmup_s": args.warmup, "audit_durability": args.audit, "rounds": args.rounds, "gateway_cpu": GATEWAY_CPU, "load_cpu": LOAD_CPU,
            "wrk_threads": 1, "requests": {k: v[0] for k, v in KINDS.items()}}
    report(info, rows)
    if args.json:
        args.json.write_text(json.dumps({"info": info, "rows": [
            {**asdict(r), "ok": r.ok} for r in rows]}, indent=2) + "\n")
    bad = [r for r in rows if not r.ok]
    if bad:
        print(f"\n{len(bad)} row(s) had errors: their figures are not throughput.",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
