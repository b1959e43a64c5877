"""200 concurrent requests against a small budget never charge more than the budget in total.

Each task reserves, then awaits (an upstream call), then settles random actual usage within its
reservation, or releases on a simulated failure. Reservations interleave at every await, which
is exactly where gateways that check first and charge later overshoot.
"""

from __future__ import annotations

import asyncio
import random

from appliance.errors import RateLimited
from appliance.limits.config import DefaultLimits, LevelLimits, LimitsPolicyConfig, PricingConfig
from appliance.limits.limiter import Limiter
from tests.appliance.limits.conftest import make_key

BUDGET = 20_000  # micro-dollars for the whole department
DAILY_TOKENS = 15_000  # for the tenant


def test_200_concurrent_requests_never_exceed_the_budget() -> None:
    rng = random.Random(4)
    limiter = Limiter(LimitsPolicyConfig(
        prices={"m": PricingConfig(input=1_000_000, output=2_000_000)},
        defaults=DefaultLimits(department=LevelLimits(monthly_budget_micros=BUDGET),
                               tenant=LevelLimits(tpd=DAILY_TOKENS))))
    keys = [make_key(f"key_{i}", app=f"app_{i % 5}") for i in range(20)]
    charged: list[int] = []
    tokens: list[int] = []
    refused: list[str] = []

    async def one(i: int) -> None:
        prompt, max_tokens = rng.randint(10, 100), rng.randint(10, 200)
        await asyncio.sleep(rng.random() / 100)
        try:
            reservation = limiter.reserve(keys[i % len(keys)], "m", prompt, max_tokens)
        except RateLimited as exc:
            refused.append(exc.message)
            return
        await asyncio.sleep(rng.random() / 50)  # the upstream call
        if rng.random() < 0.1:
            reservation.release()
            return
        actual_prompt, completion = rng.randint(1, prompt), rng.randint(0, max_tokens)
        charged.append(reservation.settle(actual_prompt, completion))
        tokens.append(actual_prompt + completion)

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(200)))

    asyncio.run(main())
    assert charged and refused, "the budget must both admit and refuse some requests"
    assert sum(charged) <= BUDGET
    assert sum(tokens) <= DAILY_TOKENS
    department = limiter._scope("department", "dep_1", 0)
    assert department.month.used == sum(charged) and department.month.held == 0
    assert limiter._scope("tenant", "ten_1", 0).day.used == sum(tokens)
