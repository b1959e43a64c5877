"""Audit log throughput: durable records/s per mode and concurrency, and records/s verified.

    .venv/bin/python bench/audit_throughput.py [--records N] [--dir PATH]

The baseline, measured in the same run on the same filesystem, is the floor a durable log
cannot beat: raw ``write`` + ``fdatasync`` of frames of the same size, one at a time, no
crypto, no chain. ``strict`` rows are durable when ``append`` returns; ``relaxed`` rows are
written (page cache) when it returns and flushed every ``fsync_interval_ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from appliance.audit import AuditConfig, AuditLog, Principal, RequestRecord, verify
from appliance.audit.records import Content, encode_record


def record(i: int) -> RequestRecord:
    return RequestRecord(
        request_id=f"req-{i:08d}", principal=Principal(tenant="hospital", department="radiology",
                                                       app="reports", key_id="k_1234", user="u7"),
        model_requested="gemma-3-270m", model_served="gemma-3-270m", provider="local",
        zone="device", sensitivity="restricted", finding_types=("person_name", "mrn"),
        action="redact", prompt_tokens=412, completion_tokens=128, cost=0.0, latency_ms=812.5,
        content=Content(mode="hashed", prompt="a" * 64, response="b" * 64))


def baseline(root: Path, count: int) -> float:
    """Raw fsync'd appends of same-sized bytes (frame ~ record + 4+8+12+16+4)."""
    frame = os.urandom(len(encode_record(record(0))) + 44)
    path = root / "raw.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    start = time.perf_counter()
    for _ in range(count):
        os.write(fd, frame)
        os.fdatasync(fd)
    elapsed = time.perf_counter() - start
    os.close(fd)
    path.unlink()
    return count / elapsed


def run_log(root: Path, config: AuditConfig, writers: int, per_writer: int
            ) -> tuple[float, int, int]:
    data = root / f"{config.durability}-{writers}"
    log = AuditLog(data, config)
    log.start()

    async def writer(n: int) -> None:
        for i in range(per_writer):
            await log.append(record(n * per_writer + i))

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(writer(n) for n in range(writers)))
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    log.close()
    return writers * per_writer / elapsed, log.fsyncs, log.records_written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=4000, help="records per row")
    parser.add_argument("--dir", type=Path, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="audit-bench-", dir=args.dir))
    try:
        n = args.records
        floor = baseline(root, min(n, 2000))
        print(f"audit throughput on {root} ({os.cpu_count()} CPUs), {n} records per row")
        print(f"{'case':<34}{'records/s':>12}{'x floor':>10}{'fsyncs':>9}")
        print(f"{'baseline: raw write+fdatasync x1':<34}{floor:>12,.0f}{1.0:>10.2f}{'':>9}")
        for durability in ("strict", "relaxed"):
            config = AuditConfig(durability=durability, fsync_interval_ms=100)
            for writers in (1, 32):
                per = max(1, n // writers)
                rate, fsyncs, _ = run_log(root, config, writers, per)
                label = f"{durability}, {writers} writer{'s' if writers > 1 else ''}"
                print(f"{label:<34}{rate:>12,.0f}{rate / floor:>10.2f}{fsyncs:>9}")
        start = time.perf_counter()
        total = 0
        for sub in sorted(root.iterdir()):
            report = verify(sub)
            assert report.ok, report.problems
            total += report.records
        rate = total / (time.perf_counter() - start)
        print(f"{'verify (decrypt+chain+signatures)':<34}{rate:>12,.0f}{'':>10}{'':>9}")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
