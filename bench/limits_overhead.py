"""Microseconds per request spent in admission, settlement and the usage ledger.

    .venv/bin/python bench/limits_overhead.py [--requests 20000] [--reps 5]

What runs: ``Limiter.reserve`` + ``Reservation.settle`` for a client key under a full
hierarchy (key, app, department, tenant, each with rpm, tpm, tpd and a monthly budget; limits
high enough that nothing is refused), then ``UsageLedger.record`` of one row, with 1 key and
with 10,000 keys in 100 departments. The baseline, measured in the same run, is the same loop
calling an empty function: the figure is the ratio and the difference. The ledger's writer
thread runs with a 100 ms interval throughout, so its commits compete for the GIL as they do in
the daemon. Then the largest overshoot of a budget under 200 concurrent requests (BENCHMARKS.md:
should be none). Medians of ``--reps`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from appliance.errors import RateLimited
from appliance.keys import ApiKey, KeyStore
from appliance.limits import Limiter, LimitsPolicyConfig, PricingConfig, UsageLedger, UsageRow
from appliance.limits.config import DefaultLimits, LevelLimits
from appliance.state import StateDB

BIG = LevelLimits(rpm=10**9, tpm=10**12, tpd=10**15, monthly_budget_micros=10**15)
POLICY = LimitsPolicyConfig(prices={"m": PricingConfig(input=2_500_000, output=10_000_000)},
                            defaults=DefaultLimits(key=BIG, app=BIG, department=BIG,
                                                   tenant=BIG))


def keys(n: int) -> list[ApiKey]:
    return [ApiKey(f"key_{i}", "k", "client", ("*",), "x", 0.0, app_id=f"app_{i // 10}",
                   department_id=f"dep_{i // 100}", tenant_id=f"ten_{i // 1000}")
            for i in range(n)]


def per_request_us(step: Callable[[int], None], n: int) -> float:
    start = time.perf_counter_ns()
    for i in range(n):
        step(i)
    return (time.perf_counter_ns() - start) / n / 1000


def overshoot(trials: int = 20) -> int:
    """Largest charge above a 20,000 micro-dollar budget over ``trials`` runs of 200 tasks."""
    worst = -10**9
    for seed in range(trials):
        rng = random.Random(seed)
        limiter = Limiter(LimitsPolicyConfig(
            prices={"m": PricingConfig(input=1_000_000, output=2_000_000)},
            defaults=DefaultLimits(department=LevelLimits(monthly_budget_micros=20_000))))
        charged: list[int] = []
        key = keys(1)[0]

        async def one() -> None:
            prompt, cap = rng.randint(10, 100), rng.randint(10, 200)
            try:
                res = limiter.reserve(key, "m", prompt, cap)
            except RateLimited:
                return
            await asyncio.sleep(rng.random() / 100)
            charged.append(res.settle(rng.randint(1, prompt), rng.randint(0, cap)))

        async def main() -> None:
            await asyncio.gather(*(one() for _ in range(200)))

        asyncio.run(main())
        worst = max(worst, sum(charged) - 20_000)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    n = args.requests
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        StateDB(path).close()
        ledger = UsageLedger(path, batch_interval_ms=100)
        ledger.start()
        row = UsageRow(time.time(), "req", "ten_0", "dep_0", "app_0", "key_0", None, "m", "m",
                       "openai", "cloud", 500, 200, 0, 2250, False, 12.5, 200)

        def baseline(i: int) -> None:
            pass

        # Authentication: the keyed hash of the presented key and one indexed lookup in the
        # same state.db (WAL) the daemon uses, with 1,000 keys stored.
        key_db = StateDB(path)
        key_store = KeyStore(key_db, b"\x01" * 32)
        presented = [key_store.create(f"k{i}", role="admin")[0] for i in range(1000)]

        def authenticate(i: int) -> None:
            key_store.lookup(presented[i % len(presented)])

        results: dict[str, list[float]] = {}
        for label, pool in (("1 key", keys(1)), ("10,000 keys", keys(10_000))):
            limiter = Limiter(POLICY)
            for k in pool:  # warm: every scope exists, as in a running daemon
                limiter.reserve(k, "m", 1, 1).release()

            def admit(i: int, limiter: Limiter = limiter, pool: list[ApiKey] = pool) -> None:
                limiter.reserve(pool[i % len(pool)], "m", 500, 256).settle(500, 200)

            def headers(i: int, limiter: Limiter = limiter, pool: list[ApiKey] = pool) -> None:
                limiter.headers(limiter.reserve(pool[i % len(pool)], "m", 500, 256)).clear()

            for rep in range(args.reps):
                results.setdefault("baseline (empty call)", []).append(
                    per_request_us(baseline, n))
                results.setdefault(f"reserve+settle, {label}", []).append(
                    per_request_us(admit, n))
                results.setdefault(f"reserve+headers, {label}", []).append(
                    per_request_us(headers, n))
                results.setdefault("ledger.record", []).append(
                    per_request_us(lambda i: ledger.record(row), n))
                results.setdefault("authenticate (HMAC + lookup)", []).append(
                    per_request_us(authenticate, n))
        ledger.close()
        key_db.close()
        written = ledger.written
    base = statistics.median(results["baseline (empty call)"])
    print(f"limits overhead: {n} requests x {args.reps} reps, medians; 4 levels, all limits on;"
          f" ledger writer at 100 ms ({written} rows committed)")
    print(f"{'what':<32} {'us/request':>10} {'minus baseline':>15} {'ratio':>8}")
    for what, values in results.items():
        median = statistics.median(values)
        print(f"{what:<32} {median:>10.2f} {median - base:>15.2f} {median / base:>8.1f}")
    print(f"200 concurrent requests x 20 runs against 20,000 micro-USD: largest (charged -"
          f" budget) = {overshoot()} micro-USD (above 0 would be an overshoot)")


if __name__ == "__main__":
    main()
