"""Local inference through the appliance versus llama-cpp-python called directly.

    .venv/bin/python bench/local_throughput.py [--reps 3] [--max-tokens 128] [--json FILE]

Baseline: ``llama_cpp.Llama`` in this process, the same GGUF, the same chat prompt (Gemma turns
from ``local_models.chat_formats.format_gemma``, tokenized the way ``LlamaPool.tokenize`` does),
the same sampling (greedy: temperature 0, top_k 40, min_p 0.05), the same ``max_tokens``, the
same threads and batch size, streamed with ``Llama.generate`` doing the per-token work the
daemon's worker does (end-of-generation check, detokenize, incremental UTF-8 decode, stop scan)
and nothing more. ``create_completion(stream=True)`` would add its own per-token Python work to
the baseline and flatter the appliance, so this is the strict comparison.

Appliance: the daemon as a subprocess (``appliance serve``), its streaming chat API called with
a lean HTTP/1.1 client, ``stream_options.include_usage`` for the token count.

Direct and appliance runs alternate, each with its own prompt (a run number in the text, so
neither side reuses a cached prompt prefix), while the other side is idle; medians are quoted.
Then aggregate tokens/s with 1, 2 and 4 concurrent streams through the appliance, for the
profile's pool (1 context, all threads) and for a pool of 2 contexts with 1 thread each.

Figures: TTFT (request sent -> first non-empty text), decode tokens/s (tokens after the first /
time after the first), end-to-end tokens/s (tokens / whole request).
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import itertools
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from local_models.chat_formats import format_gemma
from local_models.stopping import StopScanner

from _support import default_models_dir, link_tree, wait_for_line

REPO = Path(__file__).resolve().parent.parent

CHAT_MODEL = "gemma-3-270m"
GGUF = Path(CHAT_MODEL) / "gemma-3-270m-q4_k_m.gguf"
CONTEXT = 4096
BATCH = 256
START_TIMEOUT_S = 120.0
#: The numbered list makes the model write until max_tokens; {run} keeps prompts distinct.
PROMPT = ("Run {run}. Continue this numbered list of animals up to 100, one per line, without "
          "stopping:\n1. Aardvark\n2. Badger\n3. Camel\n4. Dolphin\n5.")


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    content: str


@dataclass(slots=True)
class Stream:
    """One streamed generation, timed with perf_counter_ns."""

    start_ns: int
    first_ns: int
    end_ns: int
    tokens: int

    @property
    def ttft_ms(self) -> float:
        return (self.first_ns - self.start_ns) / 1e6

    @property
    def decode_tps(self) -> float:
        span = self.end_ns - self.first_ns
        return (self.tokens - 1) / (span / 1e9) if self.tokens > 1 and span > 0 else 0.0

    @property
    def e2e_tps(self) -> float:
        return self.tokens / ((self.end_ns - self.start_ns) / 1e9)


# models and daemon -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolConfig:
    pool_size: int
    threads: int

    @property
    def label(self) -> str:
        return f"pool {self.pool_size} x {self.threads} thread(s)"

    def toml(self) -> str:
        return (f'[local]\nchat_model = "{CHAT_MODEL}"\nembedding_model = ""\n'
                f"pool_size = {self.pool_size}\nthreads = {self.threads}\n"
                f"context_length = {CONTEXT}\nbatch_size = {BATCH}\nqueue_size = 16\n")


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    key: str


@dataclass(frozen=True, slots=True)
class Daemon:
    endpoint: Endpoint
    pid: int

    def loop_cpu_s(self) -> float:
        """CPU time of the daemon's main thread (the event loop: HTTP, pipeline, SSE)."""
        fields = Path(f"/proc/{self.pid}/task/{self.pid}/stat").read_text().rsplit(")", 1)[1]
        utime, stime = fields.split()[11:13]
        return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


@contextmanager
def daemon(models: Path, pool: PoolConfig, workdir: Path) -> Iterator[Daemon]:
    """Start ``appliance serve`` on a fresh data dir; stop it with SIGTERM however we leave."""
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=workdir))
    link_tree(models, data_dir / "models")
    config = data_dir / "appliance.toml"
    config.write_text(pool.toml(), encoding="utf-8")
    log = (data_dir / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "--config", str(config), "--data-dir",
         str(data_dir), "serve", "--port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        url = urlsplit(wait_for_line(proc, "appliance: listening on ",
                                          data_dir / "daemon.log", START_TIMEOUT_S))
        key = (data_dir / "secrets" / "admin.key").read_text().splitlines()[0].strip()
        assert url.hostname is not None and url.port is not None
        yield Daemon(Endpoint(url.hostname, url.port, key), proc.pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


# the two sides -----------------------------------------------------------------------------


class DirectLlama:
    """What the daemon's worker does for one request, without the daemon around it."""

    def __init__(self, gguf: Path, threads: int) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=CONTEXT, n_threads=threads,
                                   n_threads_batch=threads, n_batch=BATCH, verbose=False)
        self.vocab = self.llm._model.vocab

    def tokenize(self, text: str) -> list[int]:
        prompt = format_gemma([Turn("user", text)])
        tokens: list[int] = []
        for i, seg in enumerate(prompt.segments):
            tokens += self.llm.tokenize(seg.text.encode("utf-8"), add_bos=(i == 0),
                                        special=seg.template)
        return tokens

    def stream(self, text: str, max_tokens: int) -> Stream:
        start = time.perf_counter_ns()
        first = 0
        tokens = self.tokenize(text)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        scanner = StopScanner(("<end_of_turn>",))
        generated = 0
        steps = self.llm.generate(tokens, top_k=40, top_p=1.0, min_p=0.05, temp=0.0,
                                  repeat_penalty=1.0, reset=True)
        for token in steps:
            if self._llama_cpp.llama_vocab_is_eog(self.vocab, token):
                break
            generated += 1
            piece = scanner.feed(decoder.decode(self.llm.detokenize([token])))
            if piece and not first:
                first = time.perf_counter_ns()
            if scanner.stopped or generated >= max_tokens:
                break
        steps.close()
        scanner.flush()
        end = time.perf_counter_ns()
        return Stream(start, first or end, end, generated)


async def appliance_stream(endpoint: Endpoint, text: str, max_tokens: int) -> Stream:
    """One streamed chat completion over a plain HTTP/1.1 connection.

    A lean client on purpose: on a 2-core box every microsecond the client spends per token is
    taken from generation (httpx costs about 0.5 ms of CPU per streamed token here)."""
    body = json.dumps({"model": CHAT_MODEL, "messages": [{"role": "user", "content": text}],
                       "max_tokens": max_tokens, "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {endpoint.host}:{endpoint.port}\r\n"
            f"Authorization: Bearer {endpoint.key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    start = time.perf_counter_ns()
    first = 0
    tokens = -1
    reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    try:
        writer.write(head + body)
        status = (await reader.readline()).split(b" ", 2)[1]
        headers = (await reader.readuntil(b"\r\n\r\n")).lower()
        if status != b"200" or b"transfer-encoding: chunked" not in headers:
            raise RuntimeError(f"HTTP {status.decode()}: {(await reader.read())[:500]!r}")
        pending = b""
        while size := int((await reader.readline()).split(b";")[0], 16):
            pending += (await reader.readexactly(size + 2))[:-2]
            *events, pending = pending.split(b"\n\n")
            for event in events:
                if not event.startswith(b"data: {"):
                    continue
                chunk = json.loads(event[6:])
                if "error" in chunk:
                    raise RuntimeError(f"stream error: {chunk['error']}")
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
                if not first and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    first = time.perf_counter_ns()
    finally:
        writer.close()
    end = time.perf_counter_ns()
    if tokens < 0:
        raise RuntimeError("the stream ended without a usage chunk")
    return Stream(start, first or end, end, tokens)


async def appliance_streams(endpoint: Endpoint, texts: Sequence[str],
                            max_tokens: int) -> list[Stream]:
    return list(await asyncio.gather(*(appliance_stream(endpoint, t, max_tokens)
                                       for t in texts)))


# the runs ----------------------------------------------------------------------------------


def _jiffies(stat_path: str) -> int:
    fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class ForeignLoad:
    """How many cores other processes kept busy while we measured (Linux /proc): this box is
    shared, and a figure taken while someone else's tests ran says so."""

    def __init__(self, daemon_pid: int) -> None:
        self.pids = ["self", str(daemon_pid)]
        self.start = self._sample()

    def _sample(self) -> tuple[float, int, int]:
        with open("/proc/stat") as f:
            cpu = [int(v) for v in f.readline().split()[1:]]
        busy = sum(cpu) - cpu[3] - cpu[4]  # all but idle and iowait
        ours = sum(_jiffies(f"/proc/{pid}/stat") for pid in self.pids)
        return time.monotonic(), busy, ours

    def cores(self) -> float:
        t1, busy1, ours1 = self._sample()
        t0, busy0, ours0 = self.start
        foreign = (busy1 - busy0) - (ours1 - ours0)
        return max(0.0, foreign / os.sysconf("SC_CLK_TCK") / max(t1 - t0, 1e-9))


def jain(values: Sequence[float]) -> float:
    """Jain's fairness index: 1.0 when every stream got the same, 1/n when one got all."""
    squares = sum(v * v for v in values)
    return sum(values) ** 2 / (len(values) * squares) if squares else 0.0


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def compare_single(direct: DirectLlama, server: Daemon, reps: int,
                   max_tokens: int) -> tuple[dict[str, list[Stream]], dict[str, float]]:
    """Alternate direct and appliance (ABBA order), a fresh prompt per pair; the first pair
    warms up. Also the CPU each streamed token costs the client and the daemon's event loop:
    on a box whose cores all run llama.cpp, that CPU comes out of generation."""
    runs: dict[str, list[Stream]] = {"direct": [], "appliance": []}
    client_s = loop_s = 0.0
    load = ForeignLoad(server.pid)
    for run in range(reps + 1):
        text = PROMPT.format(run=10 + run)
        for side in ("direct", "appliance") if run % 2 == 0 else ("appliance", "direct"):
            if side == "direct":
                result = direct.stream(text, max_tokens)
            else:
                loop_before, client_before = server.loop_cpu_s(), time.thread_time()
                (result,) = asyncio.run(appliance_streams(server.endpoint, [text], max_tokens))
                if run:
                    client_s += time.thread_time() - client_before
                    loop_s += server.loop_cpu_s() - loop_before
            if run:
                runs[side].append(result)
            print(f"  run {run}{' (warm-up)' if not run else ''}, {side}: {result.tokens} "
                  f"tokens, {result.e2e_tps:.1f} tok/s", file=sys.stderr)
    tokens = sum(s.tokens for s in runs["appliance"]) or 1
    extra = {"client_us_per_token": client_s * 1e6 / tokens,
             "daemon_loop_us_per_token": loop_s * 1e6 / tokens, "foreign_cores": load.cores()}
    return runs, extra


def concurrency(server: Daemon, pool: PoolConfig, levels: Sequence[int], reps: int,
                max_tokens: int) -> list[dict[str, Any]]:
    run_numbers = itertools.count(100)
    rows: list[dict[str, Any]] = []
    for n in levels:
        aggregates: list[float] = []
        fairness: list[float] = []
        ttft_max: list[float] = []
        ttft_min: list[float] = []
        load = ForeignLoad(server.pid)
        for _ in range(reps):
            texts = [PROMPT.format(run=next(run_numbers)) for _ in range(n)]
            streams = asyncio.run(appliance_streams(server.endpoint, texts, max_tokens))
            span = max(s.end_ns for s in streams) - min(s.start_ns for s in streams)
            aggregates.append(sum(s.tokens for s in streams) / (span / 1e9))
            fairness.append(jain([s.decode_tps for s in streams]))
            ttft_max.append(max(s.ttft_ms for s in streams))
            ttft_min.append(min(s.ttft_ms for s in streams))
        rows.append({"config": pool.label, "streams": n, "aggregate_tps": median(aggregates),
                     "jain_decode_tps": median(fairness), "ttft_min_ms": median(ttft_min),
                     "ttft_max_ms": median(ttft_max), "foreign_cores": load.cores()})
        print(f"  {pool.label}, {n} stream(s): {median(aggregates):.1f} tok/s", file=sys.stderr)
    return rows


def summarize(runs: dict[str, list[Stream]]) -> dict[str, dict[str, float]]:
    return {side: {"ttft_ms": median([s.ttft_ms for s in streams]),
                   "decode_tps": median([s.decode_tps for s in streams]),
                   "e2e_tps": median([s.e2e_tps for s in streams]),
                   "tokens": median([s.tokens for s in streams])}
            for side, streams in runs.items()}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report(info: dict[str, Any], single: dict[str, dict[str, float]], extra: dict[str, float],
           rows: list[dict[str, Any]]) -> None:
    d, a = single["direct"], single["appliance"]
    print(f"\nLocal inference: {info['model']}, {info['prompt_tokens']} prompt tokens, "
          f"max_tokens {info['max_tokens']}, greedy, {info['threads']} thread(s), "
          f"n_batch {BATCH}, n_ctx {CONTEXT}")
    print(f"{info['reps']} alternating run(s) per side, medians; CPU: {info['cpu']} "
          f"({info['cores']} cores); baseline: Llama.generate, same per-token work")
    print(f"other processes kept {extra['foreign_cores']:.2f} core(s) busy meanwhile "
          "(noise: figures are trustworthy near 0)")
    print(f"completion tokens (median): direct {d['tokens']:.0f}, appliance {a['tokens']:.0f}")
    print(f"\n{'':22}{'direct':>10}{'appliance':>11}{'ratio':>8}")
    print(f"{'decode tokens/s':22}{d['decode_tps']:10.1f}{a['decode_tps']:11.1f}"
          f"{a['decode_tps'] / d['decode_tps']:8.3f}")
    print(f"{'end-to-end tokens/s':22}{d['e2e_tps']:10.1f}{a['e2e_tps']:11.1f}"
          f"{a['e2e_tps'] / d['e2e_tps']:8.3f}")
    print(f"{'TTFT ms':22}{d['ttft_ms']:10.1f}{a['ttft_ms']:11.1f}"
          f"  {a['ttft_ms'] - d['ttft_ms']:+.1f} ms")
    per_token_us = 1e6 / d["decode_tps"]
    print(f"CPU per streamed token: daemon event loop {extra['daemon_loop_us_per_token']:.0f} "
          f"us, bench client {extra['client_us_per_token']:.0f} us (a direct token takes "
          f"{per_token_us:.0f} us of wall time on {info['threads']} thread(s))")
    print(f"\nConcurrent streams through the appliance (aggregate tokens/s; ratio vs direct "
          f"single stream {d['e2e_tps']:.1f} tok/s)")
    print(f"{'config':24}{'streams':>8}{'tok/s':>8}{'ratio':>7}{'jain':>7}"
          f"{'TTFT min ms':>13}{'TTFT max ms':>13}{'noise':>7}")
    for row in rows:
        print(f"{row['config']:24}{row['streams']:8d}{row['aggregate_tps']:8.1f}"
              f"{row['aggregate_tps'] / d['e2e_tps']:7.3f}{row['jain_decode_tps']:7.3f}"
              f"{row['ttft_min_ms']:13.1f}{row['ttft_max_ms']:13.1f}"
              f"{row['foreign_cores']:7.2f}")
    print("jain: Jain's index of per-stream decode tokens/s (1.0 = equal). With one context the "
          "streams queue (FIFO):\nthat shows in TTFT max, not in jain. noise: cores kept busy "
          "by other processes.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=default_models_dir(),
                        help="installed models tree (default: $APPLIANCE_TEST_MODELS_DIR, "
                             ".cache/test-data/models, .cache/test-models)")
    parser.add_argument("--reps", type=int, default=3, help="measured runs per side (3)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (2)")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency-reps", type=int, default=2,
                        help="runs per concurrency level (2)")
    parser.add_argument("--no-pool2", action="store_true",
                        help="skip the second configuration (pool 2 x 1 thread)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results here")
    args = parser.parse_args(argv)

    gguf = args.models_dir / GGUF
    if not gguf.exists():
        print(f"local_throughput: no model at {gguf}; install it or pass --models-dir",
              file=sys.stderr)
        return 1
    main_pool = PoolConfig(pool_size=1, threads=args.threads)
    configs = [main_pool]
    if not args.no_pool2:
        configs.append(PoolConfig(pool_size=2, threads=max(1, args.threads // 2)))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        direct = DirectLlama(gguf, args.threads)
        info: dict[str, Any] = {
            "model": str(GGUF), "max_tokens": args.max_tokens, "threads": args.threads,
            "reps": args.reps, "cpu": cpu_name(), "cores": os.cpu_count(),
            "prompt_tokens": len(direct.tokenize(PROMPT.format(run=10)))}
        print(f"single stream, {main_pool.label}:", file=sys.stderr)
        with daemon(args.models_dir, main_pool, Path(tmp)) as server:
            runs, extra = compare_single(direct, server, args.reps, args.max_tokens)
            direct.llm.close()
            rows += concurrency(server, main_pool, args.streams, args.concurrency_reps,
                                args.max_tokens)
        for pool in configs[1:]:
            with daemon(args.models_dir, pool, Path(tmp)) as server:
                rows += concurrency(server, pool, args.streams, args.concurrency_reps,
                                    args.max_tokens)
    single = summarize(runs)
    report(info, single, extra, rows)
    if args.json:
        args.json.write_text(json.dumps({"info": info, "single_stream": single, **extra,
                                         "concurrency": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
