"""Requests/s through the upstream ``Transport`` on each of its backends, against plain httpx.

    .venv/bin/python bench/upstream_transport.py [--seconds 3] [--reps 3]

What runs: the mock upstream (``tests/mock_upstream``, its own process, pinned to core 1) and,
in this process (pinned to core 0), ``Transport.send`` of a small OpenAI chat completion
(non-streamed) and ``Transport.stream`` of the same answer as SSE (12 lines), with 1 and with
32 concurrent callers, for ``backend="httpx"`` (the baseline: plain ``httpx.AsyncClient``),
``backend="httpx-aiohttp"`` (httpx's API on the aiohttp transport), ``backend="http1"`` (the
appliance's lean HTTP/1.1 client, the default) and ``backend="aiohttp"`` (aiohttp's
``ClientSession`` directly, the previous default). Each figure is the median of ``--reps``
runs of ``--seconds``; each ratio is that backend / httpx. The client is Python on one core,
so these are the transport's own costs, not the mock's (which is cheaper per request).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.providers.config import TimeoutsConfig  # noqa: E402
from appliance.providers.transport import Backend, Transport, UpstreamRequest  # noqa: E402
from tests.mock_upstream import mock_upstream  # noqa: E402

KEY = "bench-key"
#: The baseline first: every ratio is against it.
BACKENDS: tuple[Backend, ...] = ("httpx", "httpx-aiohttp", "aiohttp", "http1")


def body(stream: bool) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": "hello there"}],
            "stream": stream}


async def rate(url: str, backend: Backend, concurrency: int, seconds: float,
               streamed: bool) -> float:
    transport = Transport("bench", url + "/v1", TimeoutsConfig(), max_connections=64,
                          headers={"authorization": f"Bearer {KEY}"}, backend=backend)
    request = UpstreamRequest("POST", "/chat/completions", body(streamed))
    done = 0
    stop_at = 0.0

    async def one() -> None:
        if streamed:
            async for _ in transport.stream(request):
                pass
        else:
            await transport.send(request)

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await one()
            done += 1

    try:
        stop_at = time.perf_counter() + 0.5  # warm up the pool
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        done = 0
        start = time.perf_counter()
        stop_at = start + seconds
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - start)
    finally:
        await transport.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    pinned = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    if pinned:
        os.sched_setaffinity(0, {0})
    print(f"mock upstream on core 1, client on core 0: {pinned}; medians of {args.reps} x "
          f"{args.seconds}s")
    print(f"{'mode':<8}{'conc':>5}" + "".join(f"{b + ' req/s':>21}" for b in BACKENDS)
          + "".join(f"{b + '/httpx':>21}" for b in BACKENDS[1:]))
    with mock_upstream(KEY, cpu=1 if pinned else None) as url:
        for streamed in (False, True):
            for concurrency in (1, 32):
                figures: dict[Backend, float] = {}
                for backend in BACKENDS:
                    runs = [asyncio.run(rate(url, backend, concurrency, args.seconds,
                                             streamed)) for _ in range(args.reps)]
                    figures[backend] = statistics.median(runs)
                print(f"{'stream' if streamed else 'send':<8}{concurrency:>5}"
                      + "".join(f"{figures[b]:>21,.0f}" for b in BACKENDS)
                      + "".join(f"{figures[b] / figures['httpx']:>21.2f}"
                                for b in BACKENDS[1:]), flush=True)


if __name__ == "__main__":
    main()
