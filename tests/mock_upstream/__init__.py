"""A mock upstream process speaking the cloud providers' wire formats (``server.py``).

``mock_upstream()`` runs it as a real child process on a free loopback port, for the
providers' contract suite and for ``bench/``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

_LISTENING = re.compile(r"mock-upstream: listening on (http://\S+)")
REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def mock_upstream(key: str, slow_seconds: float = 3.0,
                  cpu: int | None = None) -> Iterator[str]:
    """Start ``python -m tests.mock_upstream.server`` (pinned to ``cpu`` if given) and yield
    its URL; the process is stopped on exit."""
    command = [sys.executable, "-m", "tests.mock_upstream.server", "--port", "0"]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    env = {**os.environ, "MOCK_UPSTREAM_KEY": key,
           "MOCK_UPSTREAM_SLOW_SECONDS": str(slow_seconds), "PYTHONUNBUFFERED": "1"}
    # Only the first line is read: the rest (aiohttp logs a trace for every stream a client
    # cuts) must not go to a pipe nobody drains, or the mock blocks once it fills.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env, cwd=REPO)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = _LISTENING.search(line)
        if match is None:
            raise RuntimeError(f"mock upstream did not start: {line}{proc.stdout.read()}")
        yield match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


#: The upstream key the e2e tests give the mock, and the environment that hands it to the
#: appliance (its providers name ``credential = "env:TEST_UPSTREAM_KEY"``).
KEY = "sk-upstream-test-0123456789"
ENV = {"TEST_UPSTREAM_KEY": KEY}


def providers_toml(url: str) -> str:
    """The appliance config most e2e tests start from: no embedding model, and the mock as two
    providers: ``openai`` (zone cloud, model ``gpt-4o-mini``) and ``vllm`` (an
    OpenAI-compatible server on site, model ``site-llama``)."""
    return f"""
[local]
embedding_model = ""
[[providers]]
name = "openai"
kind = "openai"
zone = "cloud"
base_url = "{url}/v1"
models = ["gpt-4o-mini"]
credential = "env:TEST_UPSTREAM_KEY"
[[providers]]
name = "vllm"
kind = "openai_compatible"
zone = "site"
base_url = "{url}/v1"
models = ["site-llama"]
credential = "env:TEST_UPSTREAM_KEY"
"""
