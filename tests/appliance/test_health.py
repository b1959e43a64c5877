"""The circuit breaker and the latency measurements, on a fake clock: every state transition,
the uplink going down, trial slots, and percentiles over the ring of recent samples."""

from __future__ import annotations

import aiohttp
import pytest

from appliance.config import ProviderHealthConfig
from appliance.errors import UpstreamError
from appliance.health import CONNECTION_CODES, TRIAL_EXPIRY_SECONDS, ProviderHealth, Samples
from appliance.providers.transport import map_aiohttp_error


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


UNREACHABLE = UpstreamError("cannot be reached", code="upstream_unreachable")
HTTP_500 = UpstreamError("failed (HTTP 500)", code="upstream_unavailable")


def make(clock: FakeClock, **overrides: float) -> ProviderHealth:
    settings: dict[str, float] = dict(failure_threshold=2, cooldown_seconds=10,
                                      max_cooldown_seconds=25, half_open_requests=1,
                                      half_open_successes=2)
    settings.update(overrides)
    health = ProviderHealth(ProviderHealthConfig(**settings),  # type: ignore[arg-type]
                            clock=clock, wall_clock=lambda: 5000.0)
    health.cloud_providers = lambda: ["openai", "anthropic"]
    return health


def test_closed_opens_after_consecutive_failures_and_a_success_resets_the_count() -> None:
    clock = FakeClock()
    health = make(clock)
    health.record_failure("p", HTTP_500)
    health.record_success("p", "m", 0.1)
    health.record_failure("p", HTTP_500)
    assert health.state("p") == "closed" and health.available("p")
    health.record_failure("p", HTTP_500)
    assert health.state("p") == "open" and not health.available("p")
    reason = health.unavailable_reason("p")
    assert "unhealthy" in reason and "2 consecutive failures" in reason
    assert "half-open in 10s" in reason


def test_open_goes_half_open_after_the_cooldown_and_closes_after_enough_trials() -> None:
    clock = FakeClock()
    health = make(clock)
    for _ in range(2):
        health.record_failure("p", HTTP_500)
    clock.now += 9.9
    assert health.state("p") == "open"
    clock.now += 0.1
    assert health.state("p") == "half_open" and health.available("p")
    health.begin("p")
    health.record_success("p", "m", 0.1)
    assert health.state("p") == "half_open"  # one of the two successes needed
    health.begin("p")
    health.record_success("p", "m", 0.1)
    assert health.state("p") == "closed"
    assert health.describe("p", [])["circuit"] == {
        "state": "closed", "reason": None, "consecutive_failures": 0, "trips": 0,
        "open_until": None, "retry_in_seconds": None, "trials_in_flight": 0}


def test_a_failed_trial_reopens_for_twice_as_long_up_to_the_maximum() -> None:
    clock = FakeClock()
    health = make(clock)
    for _ in range(2):
        health.record_failure("p", HTTP_500)
    clock.now += 10
    health.begin("p")
    health.record_failure("p", HTTP_500)
    assert health.state("p") == "open" and "a trial failed" in health.unavailable_reason("p")
    clock.now += 19.9
    assert health.state("p") == "open"  # 20s the second time
    clock.now += 0.1
    assert health.state("p") == "half_open"
    health.record_failure("p", HTTP_500)
    clock.now += 24.9
    assert health.state("p") == "open"  # 40s, capped at 25s
    described = health.describe("p", [])["circuit"]
    assert described["trips"] == 3 and described["consecutive_failures"] == 4
    assert described["retry_in_seconds"] == pytest.approx(0.1)
    assert described["open_until"] == pytest.approx(5000.1)
    clock.now += 0.1
    assert health.state("p") == "half_open"


def test_a_half_open_circuit_lets_a_limited_number_of_trials_through_at_once() -> None:
    clock = FakeClock()
    health = make(clock, half_open_requests=2, half_open_successes=1)
    for _ in range(2):
        health.record_failure("p", HTTP_500)
    assert not health.trial_free("p")  # open: no trials
    clock.now += 10
    assert health.trial_free("p")
    health.begin("p")
    health.begin("p")
    assert not health.trial_free("p") and health.available("p")
    assert "trial requests in flight" in health.unavailable_reason("p")
    clock.now += TRIAL_EXPIRY_SECONDS + 1  # their clients left: the slots are freed
    assert health.trial_free("p")
    health.begin("p")
    health.record_success("p", "m", 0.1)
    assert health.state("p") == "closed" and not health.trial_free("p")


def test_a_lone_candidate_answering_while_open_counts_as_a_trial() -> None:
    clock = FakeClock()
    health = make(clock, half_open_successes=1)
    for _ in range(2):
        health.record_failure("p", HTTP_500)
    health.begin("p")  # open: tried anyway (a concrete model has no alternative)
    health.record_success("p", "m", 0.1)
    assert health.state("p") == "closed"


def test_a_connection_failure_to_a_cloud_provider_opens_every_cloud_circuit_at_once() -> None:
    clock = FakeClock()
    health = make(clock, failure_threshold=5)
    health.record_failure("openai", UNREACHABLE)
    for name in ("openai", "anthropic"):
        assert health.state(name) == "open"
        assert "uplink down: provider 'openai' could not be reached (upstream_unreachable)" \
            in health.unavailable_reason(name)
    assert health.state("vllm") == "closed" and health.state("local") == "closed"
    clock.now += 10
    assert health.state("openai") == health.state("anthropic") == "half_open"
    # Each is probed on its own: a dead one does not shut the uplink again for the other.
    health.record_failure("openai", UNREACHABLE)
    assert health.state("openai") == "open" and health.state("anthropic") == "half_open"
    health.record_success("anthropic", "claude", 0.2)
    health.record_success("anthropic", "claude", 0.2)
    assert health.state("anthropic") == "closed"


def test_http_errors_and_site_connection_failures_only_count_towards_the_threshold() -> None:
    clock = FakeClock()
    health = make(clock, failure_threshold=3)
    health.record_failure("openai", HTTP_500)
    health.record_failure("vllm", UNREACHABLE)
    assert {health.state(n) for n in ("openai", "anthropic", "vllm")} == {"closed"}
    health.record_failure("vllm", UNREACHABLE)
    health.record_failure("vllm", UNREACHABLE)
    assert health.state("vllm") == "open" and health.state("openai") == "closed"


def test_the_transport_reports_connection_failures_with_the_codes_the_breaker_reads() -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("h", 1, False, False, None, None, None),
        OSError(111, "Connection refused"))
    codes = {map_aiohttp_error("p", refused).code,
             map_aiohttp_error("p", aiohttp.ConnectionTimeoutError()).code}
    assert codes == {"upstream_unreachable", "upstream_connect_timeout"} == CONNECTION_CODES
    assert map_aiohttp_error("p", aiohttp.ServerDisconnectedError()).code \
        not in CONNECTION_CODES


def test_samples_keep_a_moving_average_and_percentiles_over_a_bounded_ring() -> None:
    samples = Samples(alpha=0.5, size=20)
    assert samples.percentile(95) is None and samples.ewma is None
    samples.add(1.0)
    samples.add(3.0)
    assert samples.ewma == pytest.approx(2.0)
    for value in range(1, 101):  # the ring keeps only 81..100
        samples.add(float(value))
    assert len(samples.ring) == 20
    assert samples.percentile(95) == 99.0  # nearest rank: the 19th of 20
    assert samples.percentile(50) == 90.0
    assert samples.percentile(100) == 100.0 and samples.percentile(0) == 81.0


def test_latency_is_kept_per_provider_and_model() -> None:
    health = make(FakeClock())
    assert health.latency("p", "a") is None
    health.record_success("p", "a", 0.5)
    health.record_success("p", "a", 1.5, completion_tokens=30)  # a whole answer: 20 tokens/s
    health.record_throughput("p", "a", 0, 1.0)  # nothing generated: no sample
    health.record_success("p", "b", 0.1)
    measured = health.latency("p", "a")
    assert measured is not None and list(measured.ttft.ring) == [0.5, 1.5]
    assert list(measured.tokens_per_second.ring) == [20.0]
    latency = health.describe("p", ["a", "b", "c"])["latency"]
    assert latency["a"]["ttft_ms"] == {"ewma": 800.0, "p50": 500.0, "p95": 1500.0,
                                      "samples": 2}
    assert latency["a"]["tokens_per_second"]["p95"] == 20.0
    assert latency["b"]["tokens_per_second"]["samples"] == 0 and latency["c"] is None
