"""Admission: windows and resets, every level, money, settle/release, headers."""

from __future__ import annotations

import pytest

from appliance.errors import RateLimited
from appliance.keys import ApiKey
from appliance.limits.config import (DefaultLimits, LevelLimits, LimitsPolicyConfig,
                                     PricingConfig, cost_micros)
from appliance.limits.limiter import Limiter, format_reset
from appliance.limits.store import LimitStore
from appliance.state import StateDB
from tests.appliance.limits.conftest import NEAR_MONTH_END, Clock, make_key

# 1 micro-dollar per input token, 2 per output token
PRICES = {"m": PricingConfig(input=1_000_000, output=2_000_000, cached_input=500_000)}


def policy(**levels: LevelLimits) -> LimitsPolicyConfig:
    return LimitsPolicyConfig(prices=PRICES, defaults=DefaultLimits(**levels),
                              default_max_tokens=50)


def test_requests_per_minute_is_a_token_bucket(clock: Clock, key: ApiKey) -> None:
    limiter = Limiter(policy(key=LevelLimits(rpm=2)), clock=clock)
    limiter.reserve(key, "m", 1, 1)
    limiter.reserve(key, "m", 1, 1)
    with pytest.raises(RateLimited) as refused:
        limiter.reserve(key, "m", 1, 1)
    assert refused.value.status == 429
    assert refused.value.retry_after == pytest.approx(30.0)  # one request refills in 60/2 s
    assert refused.value.headers() == {"retry-after": "30"}
    assert "key 'key_1' requests per minute: limit 2" in refused.value.message
    clock.advance(30)
    limiter.reserve(key, "m", 1, 1)
    with pytest.raises(RateLimited):
        limiter.reserve(key, "m", 1, 1)


def test_tokens_per_minute_refill_and_oversized_request(clock: Clock, key: ApiKey) -> None:
    limiter = Limiter(policy(key=LevelLimits(tpm=600)), clock=clock)
    limiter.reserve(key, "m", 400, 100)
    with pytest.raises(RateLimited) as refused:
        limiter.reserve(key, "m", 100, 100)  # 200 wanted, 100 left, refills 10/s
    assert refused.value.retry_after == pytest.approx(10.0)
    clock.advance(10)
    limiter.reserve(key, "m", 100, 100)
    with pytest.raises(RateLimited) as too_big:
        limiter.reserve(key, "m", 500, 101)
    assert "requested 601" in too_big.value.message


def test_every_level_applies(clock: Clock, key: ApiKey) -> None:
    names = {"dep_1": "Radiology"}
    limiter = Limiter(policy(key=LevelLimits(tpm=10_000), department=LevelLimits(tpm=300)),
                      clock=clock, describe=lambda kind, ident: names.get(ident, ident))
    limiter.reserve(key, "m", 100, 100)
    other = make_key("key_2", app="app_2")  # same department, another app and key
    with pytest.raises(RateLimited) as refused:
        limiter.reserve(other, "m", 100, 100)
    assert "department 'Radiology' tokens per minute" in refused.value.message
    elsewhere = make_key("key_3", app="app_3", department="dep_2")
    limiter.reserve(elsewhere, "m", 100, 100)  # another department is not affected


def test_the_longest_wait_is_reported(clock: Clock, key: ApiKey) -> None:
    limiter = Limiter(policy(key=LevelLimits(rpm=1), tenant=LevelLimits(tpd=150)),
                      clock=clock)
    limiter.reserve(key, "m", 50, 50)
    with pytest.raises(RateLimited) as refused:
        limiter.reserve(key, "m", 50, 50)
    assert "tenant 'ten_1' tokens per day" in refused.value.message
    assert refused.value.retry_after == pytest.approx(3600 + 60)  # until 00:00 UTC


def test_stored_limits_override_defaults_column_by_column(clock: Clock, key: ApiKey,
                                                          state_db: StateDB) -> None:
    store = LimitStore(state_db)
    limiter = Limiter(policy(app=LevelLimits(rpm=5, tpm=1000)), store, clock=clock)
    limiter.set_limits("app", "app_1", tpm=100)
    assert store.get_limits("app", "app_1") is not None
    effective = limiter.effective_limits("app", "app_1")
    assert (effective.rpm, effective.tpm) == (5, 100)
    with pytest.raises(RateLimited):
        limiter.reserve(key, "m", 100, 1)
    limiter.set_limits("app", "app_1")  # nothing given: back to the defaults
    assert store.get_limits("app", "app_1") is None
    limiter.reserve(key, "m", 100, 1)


def test_money_budget_in_micro_dollars(clock: Clock, key: ApiKey) -> None:
    limiter = Limiter(policy(department=LevelLimits(monthly_budget_micros=1000)), clock=clock)
    first = limiter.reserve(key, "m", 100, 200)  # worst case 100*1 + 200*2 = 500
    assert first.cost_micros == 500
    second = limiter.reserve(key, "m", 100, 200)
    with pytest.raises(RateLimited) as refused:
        limiter.reserve(key, "m", 1, 0)
    assert "monthly budget: limit 1000 micro-USD" in refused.value.message
    assert first.settle(100, 50) == 200  # 100 + 50*2
    limiter.reserve(key, "m", 100, 100)  # 300 fits in what settlement gave back
    second.release()
    assert cost_micros(PRICES["m"], 1000, 0, cached_tokens=1000) == 500
    assert cost_micros(PRICES["m"], 1, 0) == 1  # rounded up, never down
    assert cost_micros(None, 10**6, 10**6) == 0


def test_settle_and_release_arithmetic_is_idempotent(clock: Clock, key: ApiKey) -> None:
    limiter = Limiter(policy(key=LevelLimits(rpm=10, tpm=1000, tpd=5000,
                                             monthly_budget_micros=10_000)), clock=clock)
    scope = limiter._scope("key", "key_1", clock())
    res = limiter.reserve(key, "m", 100, 200)
    assert (scope.day.held, scope.month.held) == (300, 500)
    assert scope.tokens is not None and scope.tokens.level == 700
    assert res.settle(80, 20, cached_tokens=40) == 40 * 1 + 40 // 2 + 20 * 2
    assert res.settle(1, 1) == 100  # a second settle changes nothing
    res.release()  # nor does a release after it
    assert (scope.day.held, scope.day.used) == (0, 100)
    assert (scope.month.held, scope.month.used) == (0, 100)
    assert scope.tokens.level == 900 and scope.requests is not None
    assert scope.requests.level == 9
    gone = limiter.reserve(key, "m", 100, 200)
    gone.release()
    gone.release()
    assert gone.settle(100, 200) == 0
    assert (scope.day.held, scope.day.used, scope.month.used) == (0, 100, 100)
    assert scope.tokens.level == 900 and scope.requests.level == 9


def test_default_max_tokens_when_the_client_gives_none(clock: Clock, key: ApiKey) -> None:
    limiter = Limiter(policy(), clock=clock)
    assert limiter.reserve(key, "m", 10, None).tokens == 60


def test_day_and_month_reset_at_utc_boundaries(key: ApiKey) -> None:
    clock = Clock(NEAR_MONTH_END)  # 2025-03-31 23:59 UTC
    limiter = Limiter(policy(key=LevelLimits(tpd=100, monthly_budget_micros=1000)),
                      clock=clock)
    held = limiter.reserve(key, "m", 50, 50)
    with pytest.raises(RateLimited) as refused:
        limiter.reserve(key, "m", 1, 0)
    assert refused.value.retry_after == pytest.approx(60)
    clock.advance(60)  # 2025-04-01 00:00 UTC: new day and new month
    fresh = limiter.reserve(key, "m", 50, 50)
    assert held.settle(50, 50) == 150  # charged to the new period, as it ends now
    scope = limiter._scope("key", "key_1", clock())
    assert scope.day.period == "2025-04-01" and scope.month.period == "2025-04"
    assert (scope.day.used, scope.day.held) == (100, 100)
    fresh.release()
    assert (scope.day.used, scope.day.held) == (100, 0)


def test_counters_survive_a_restart_through_the_ledger_table(clock: Clock, key: ApiKey,
                                                             state_db: StateDB) -> None:
    day, month = "2025-03-31", "2025-03"
    state_db.conn.executemany(
        "INSERT INTO limit_counters VALUES (?, ?, ?, ?, ?)",
        [("department", "dep_1", "day", day, 90), ("department", "dep_1", "month", month, 900),
         ("department", "dep_1", "day", "2025-03-30", 10**9)])
    limiter = Limiter(policy(department=LevelLimits(tpd=100, monthly_budget_micros=1000)),
                      LimitStore(state_db), clock=clock)
    limiter.reserve(key, "m", 5, 5)
    with pytest.raises(RateLimited):
        limiter.reserve(key, "m", 1, 0)


def test_headers_show_the_tightest_level(clock: Clock, key: ApiKey) -> None:
    limiter = Limiter(policy(key=LevelLimits(rpm=100, tpm=10_000),
                             tenant=LevelLimits(rpm=10, tpm=360_000)), clock=clock)
    assert limiter.headers(key)["x-ratelimit-remaining-requests"] == "10"
    res = limiter.reserve(key, "m", 3000, 1000)
    headers = limiter.headers(res)
    assert headers == {
        "x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "9",
        "x-ratelimit-reset-requests": "6s",
        "x-ratelimit-limit-tokens": "10000", "x-ratelimit-remaining-tokens": "6000",
        "x-ratelimit-reset-tokens": "24s",
    }
    # With nothing configured a key still has the default per-minute limits, so the headers
    # are on every response.
    unconfigured = Limiter(policy(), clock=clock).headers(key)
    assert unconfigured["x-ratelimit-limit-requests"] == "600"
    assert unconfigured["x-ratelimit-limit-tokens"] == "1000000"
    assert len(unconfigured) == 6


def test_format_reset() -> None:
    assert [format_reset(s) for s in (0, 0.0204, 1, 59.2, 360, 3723)] == [
        "0s", "21ms", "1s", "1m0s", "6m0s", "1h2m3s"]


def test_a_fallback_is_charged_at_the_price_of_the_model_that_served(clock: Clock,
                                                                      key: ApiKey) -> None:
    prices = {**PRICES, "cheap": PricingConfig(input=100_000, output=100_000)}
    limiter = Limiter(LimitsPolicyConfig(prices=prices, defaults=DefaultLimits(
        department=LevelLimits(monthly_budget_micros=1000))), clock=clock)
    held = limiter.reserve(key, "m", 100, 200)  # reserved at the dearer candidate: 500
    assert held.settle(100, 100, model="cheap") == 20  # 200 tokens at 0.1 micro-USD
    # 980 left: a 900 reservation fits (charged at "m" it would have left only 700)
    assert limiter.reserve(key, "m", 100, 400).cost_micros == 900
