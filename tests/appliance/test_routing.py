"""Routing among candidates with fake providers and a fake clock: aliases, policy reroute
and block, health (skip after repeated failures, retry after a growing cool-down), latency
ranking and fallback before the first byte."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.config import ConfigError, LimitsConfig
from appliance.policy import FallbackModelConfig, OnForbiddenConfig, PolicyConfig
from appliance.errors import PolicyBlocked, ServiceUnavailable, UpstreamError
from appliance.health import ProviderHealth
from appliance.keys import ApiKey, KeyStore
from appliance.pipeline import Pipeline, RequestContext
from appliance.providers.base import ModelInfo, Provider, Zone
from appliance.routing import Alias, Router
from appliance.state import StateDB
from appliance.types import Delta, Generation, GenerationRequest, Message, SamplingParams, Usage


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeProvider(Provider):
    def __init__(self, name: str, zone: Zone, model: str, fail: bool = False) -> None:
        self.name, self.zone, self.model, self.fail = name, zone, model, fail
        self.calls: list[str] = []

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(self.model, "chat", self.name)]

    async def generate(self, request: GenerationRequest) -> Generation:
        self.calls.append(request.model)
        if self.fail:
            raise UpstreamError("upstream failed")
        return Generation("hi", "stop", Usage(1, 1), request.model)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        self.calls.append(request.model)
        if self.fail:
            raise UpstreamError("upstream failed")
        yield Delta("hi", "stop", Usage(1, 1))


def health_with(clock: FakeClock) -> ProviderHealth:
    return ProviderHealth(failure_threshold=2, cooldown_seconds=10, max_cooldown_seconds=25,
                          clock=clock)


def test_unhealthy_after_consecutive_failures_and_retried_after_a_growing_cooldown() -> None:
    clock = FakeClock()
    health = health_with(clock)
    health.record_failure("p")
    assert health.available("p")
    health.record_failure("p")
    assert not health.available("p") and "2 consecutive failures" in \
        health.unavailable_reason("p")
    clock.now += 10
    assert health.available("p")  # half-open: one more try
    health.record_failure("p")
    clock.now += 10
    assert not health.available("p")  # the cool-down doubled to 20s
    clock.now += 10
    health.record_failure("p")
    clock.now += 24
    assert not health.available("p")  # 40s capped at 25s
    clock.now += 1
    assert health.available("p")
    health.record_success("p", 0.2)
    health.record_failure("p")
    assert health.available("p")  # a success starts the count again


def test_latency_is_a_moving_average() -> None:
    health = ProviderHealth(alpha=0.5)
    assert health.latency("p") is None
    health.record_success("p", 1.0)
    health.record_success("p", 3.0)
    assert health.latency("p") == pytest.approx(2.0)


@pytest.fixture
def key(tmp_path: Path) -> ApiKey:
    keys = KeyStore(StateDB(tmp_path / "state.db"), b"\x00" * 32)
    _, api_key = keys.create("admin", role="admin")
    return api_key


def setup(policy: PolicyConfig | None = None, fail_cloud: bool = False,
          strategy: str = "ordered") -> tuple[Pipeline, dict[str, FakeProvider], FakeClock]:
    providers = {"cloud": FakeProvider("cloud", "cloud", "gpt", fail=fail_cloud),
                 "site": FakeProvider("site", "site", "llama"),
                 "device": FakeProvider("device", "device", "gemma")}
    clock = FakeClock()
    router = Router(list(providers.values()),
                    {"auto": Alias("auto", ("gpt", "llama", "gemma"), strategy),  # type: ignore[arg-type]
                     "cloudy": Alias("cloudy", ("gpt",))}, health_with(clock))
    pipeline = Pipeline(None, router, LimitsConfig(), policy=policy)  # type: ignore[arg-type]
    return pipeline, providers, clock


def request(model: str, stream: bool = False) -> GenerationRequest:
    return GenerationRequest(model=model, sampling=SamplingParams(),
                             messages=[Message("user", "x")], stream=stream)


def context(key: ApiKey, sensitivity: str = "public") -> RequestContext:
    ctx = RequestContext("r1", principal=key)
    ctx.sensitivity = sensitivity
    return ctx


def run(pipeline: Pipeline, ctx: RequestContext, req: GenerationRequest) -> object:
    pipeline.decide_route(ctx, req)
    return asyncio.run(pipeline.call(ctx, req))


def test_alias_takes_its_first_candidate_and_asks_it_for_its_own_model(key: ApiKey) -> None:
    pipeline, providers, _ = setup()
    ctx = context(key)
    run(pipeline, ctx, request("auto"))
    assert ctx.route is not None and ctx.route.label == "cloud/gpt" and ctx.action == "allow"
    assert providers["cloud"].calls == ["gpt"]


def test_restricted_alias_reroutes_and_concrete_model_blocks(key: ApiKey) -> None:
    pipeline, providers, _ = setup()
    ctx = context(key, "restricted")
    run(pipeline, ctx, request("auto"))
    assert ctx.route is not None and ctx.route.label == "site/llama"
    assert ctx.action == "reroute" and providers["cloud"].calls == []
    with pytest.raises(PolicyBlocked):
        pipeline.decide_route(context(key, "restricted"), request("gpt"))
    with pytest.raises(PolicyBlocked, match="cloudy"):
        pipeline.decide_route(context(key, "restricted"), request("cloudy"))


def test_concrete_model_reroutes_to_the_fallback_model_when_configured(key: ApiKey) -> None:
    policy = PolicyConfig(on_forbidden=OnForbiddenConfig(restricted="reroute"),
                          fallback_model=FallbackModelConfig(restricted="gemma"))
    pipeline, _, _ = setup(policy)
    ctx = context(key, "restricted")
    route = pipeline.decide_route(ctx, request("gpt"))
    assert route.label == "device/gemma" and ctx.action == "reroute"
    blocking = PolicyConfig(on_forbidden=OnForbiddenConfig(restricted="block"))
    with pytest.raises(PolicyBlocked):
        setup(blocking)[0].decide_route(context(key, "restricted"), request("auto"))


def test_fallback_before_the_first_byte_and_unhealthy_provider_skipped(key: ApiKey) -> None:
    pipeline, providers, clock = setup(fail_cloud=True)
    for stream in (False, True):
        ctx = context(key)
        run(pipeline, ctx, request("auto", stream))
        assert ctx.route is not None and ctx.route.label == "site/llama"
    assert len(providers["cloud"].calls) == 2  # now unhealthy (threshold 2)
    ctx = context(key)
    run(pipeline, ctx, request("auto"))
    assert len(providers["cloud"].calls) == 2 and ctx.route is not None
    with pytest.raises(ServiceUnavailable, match="unhealthy"):
        pipeline.decide_route(context(key), request("cloudy"))
    clock.now += 10
    providers["cloud"].fail = False
    run(pipeline, ctx := context(key), request("auto"))
    assert ctx.route is not None and ctx.route.label == "cloud/gpt"  # retried after cool-down


def test_fastest_prefers_the_lowest_measured_latency(key: ApiKey) -> None:
    pipeline, _, _ = setup(strategy="fastest")
    health = pipeline.router.health
    for name, seconds in (("cloud", 0.9), ("site", 0.1), ("device", 0.5)):
        health.record_success(name, seconds)
    assert pipeline.decide_route(context(key), request("auto")).label == "site/llama"


def test_alias_config_errors_name_the_key() -> None:
    router = Router([FakeProvider("site", "site", "llama")], {"llama": Alias("llama", ("llama",))})
    with pytest.raises(ConfigError, match="aliases.llama.*shadows"):
        router.check()
    router.aliases = {"auto": Alias("auto", ("nope",))}
    with pytest.raises(ConfigError, match="aliases.auto.*'nope'"):
        router.check()
    router.aliases = {}
    with pytest.raises(ConfigError, match="policy.fallback_model.restricted"):
        router.check({"restricted": "nope"})
