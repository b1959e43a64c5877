"""Routing among candidates with fake providers and a fake clock: aliases, policy reroute
and block, circuits (skipped while open, tried again half-open, every cloud circuit opened when
the uplink is down), ranking by circuit, latency budget, strategy and price, and fallback
before the first byte."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.config import ConfigError, LimitsConfig, ProviderHealthConfig
from appliance.policy import FallbackModelConfig, OnForbiddenConfig, PolicyConfig
from appliance.errors import PolicyBlocked, ServiceUnavailable, UpstreamError
from appliance.health import ProviderHealth
from appliance.keys import ApiKey, KeyStore
from appliance.limits.config import PricingConfig
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
    def __init__(self, name: str, zone: Zone, model: str, fail: bool = False,
                 code: str = "upstream_error") -> None:
        self.name, self.zone, self.model, self.fail, self.code = name, zone, model, fail, code
        self.calls: list[str] = []

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(self.model, "chat", self.name)]

    async def generate(self, request: GenerationRequest) -> Generation:
        self.calls.append(request.model)
        if self.fail:
            raise UpstreamError("upstream failed", code=self.code)
        return Generation("hi", "stop", Usage(1, 1), request.model)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        self.calls.append(request.model)
        if self.fail:
            raise UpstreamError("upstream failed", code=self.code)
        yield Delta("h", None, Usage(1, 1))
        yield Delta("i", None, Usage(1, 2))
        yield Delta("!", "stop", Usage(1, 3))


def health_with(clock: FakeClock) -> ProviderHealth:
    return ProviderHealth(ProviderHealthConfig(failure_threshold=2, cooldown_seconds=10,
                                               max_cooldown_seconds=25), clock=clock)


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
    for name, model, seconds in (("cloud", "gpt", 0.9), ("site", "llama", 0.1),
                                 ("device", "gemma", 0.5)):
        health.record_success(name, model, seconds)
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


# -- circuits, uplink, ranking --------------------------------------------------------------

def pipeline_of(*providers: FakeProvider, price: dict[str, PricingConfig] | None = None,
                strategy: str = "ordered") -> tuple[Pipeline, FakeClock]:
    """A pipeline whose alias ``auto`` lists every provider's model in the given order, and
    ``cloud-only`` every cloud model."""
    clock = FakeClock()
    models = tuple(p.model for p in providers)
    clouds = tuple(p.model for p in providers if p.zone == "cloud")
    prices = price or {}
    router = Router(list(providers),
                    {"auto": Alias("auto", models, strategy),  # type: ignore[arg-type]
                     "cloud-only": Alias("cloud-only", clouds)}, health_with(clock),
                    price=prices.get)
    return Pipeline(None, router, LimitsConfig()), clock  # type: ignore[arg-type]


def labels(pipeline: Pipeline, ctx: RequestContext, req: GenerationRequest) -> list[str]:
    ctx.request = req  # as run_generation sets it
    pipeline.decide_route(ctx, req)
    return [route.label for route in ctx.candidates]


def test_uplink_down_opens_every_cloud_circuit_at_once_while_site_serves(key: ApiKey) -> None:
    openai = FakeProvider("openai", "cloud", "gpt", fail=True, code="upstream_unreachable")
    anthropic = FakeProvider("anthropic", "cloud", "claude")
    site = FakeProvider("site", "site", "llama")
    pipeline, clock = pipeline_of(openai, site, anthropic)
    ctx = context(key)
    run(pipeline, ctx, request("auto"))
    assert ctx.route is not None and ctx.route.label == "site/llama"
    health = pipeline.router.health
    # One connection failure (threshold 2) opened both cloud circuits, never called.
    assert health.state("openai") == health.state("anthropic") == "open"
    assert health.state("site") == "closed" and anthropic.calls == []
    for _ in range(2):
        ctx = context(key)
        run(pipeline, ctx, request("auto", stream=True))
        assert ctx.route is not None and ctx.route.label == "site/llama"
    assert len(openai.calls) == 1 and anthropic.calls == [] and len(site.calls) == 3
    with pytest.raises(ServiceUnavailable) as info:
        pipeline.decide_route(context(key), request("cloud-only"))
    assert "uplink down: provider 'openai' could not be reached" in info.value.message
    assert "'gpt'" in info.value.message and "'claude'" in info.value.message
    clock.now += 10  # half-open: each cloud provider is probed on its own
    ctx = context(key)
    assert labels(pipeline, ctx, request("auto")) == ["openai/gpt", "site/llama",
                                                      "anthropic/claude"]
    asyncio.run(pipeline.call(ctx, request("auto")))  # openai's trial fails: site serves
    assert ctx.route is not None and ctx.route.label == "site/llama"
    assert health.state("openai") == "open" and health.state("anthropic") == "half_open"
    ctx = context(key)
    run(pipeline, ctx, request("cloud-only"))
    assert ctx.route is not None and ctx.route.label == "anthropic/claude"
    assert health.state("anthropic") == "closed"


def test_closed_candidates_rank_before_half_open_ones_without_a_trial_slot(key: ApiKey) -> None:
    cloud, site = FakeProvider("cloud", "cloud", "gpt"), FakeProvider("site", "site", "llama")
    pipeline, clock = pipeline_of(cloud, site)
    health = pipeline.router.health
    for _ in range(2):
        health.record_failure("cloud", UpstreamError("x"))
    assert labels(pipeline, context(key), request("auto")) == ["site/llama"]
    clock.now += 10
    # Half-open with its trial slot free: the trial keeps the candidate's place...
    assert labels(pipeline, context(key), request("auto")) == ["cloud/gpt", "site/llama"]
    health.begin("cloud")
    # ...while the trial is in flight, other requests try it last.
    assert labels(pipeline, context(key), request("auto")) == ["site/llama", "cloud/gpt"]


def test_503_names_the_state_of_every_candidate(key: ApiKey) -> None:
    cloud, site = FakeProvider("cloud", "cloud", "gpt"), FakeProvider("site", "site", "llama")
    pipeline, _ = pipeline_of(cloud, site)
    for _ in range(2):
        pipeline.router.health.record_failure("site", UpstreamError("x"))
    with pytest.raises(ServiceUnavailable) as info:
        pipeline.decide_route(context(key, "restricted"), request("auto"))
    message = info.value.message
    assert "'gpt': zone cloud not allowed for restricted data" in message
    assert "'llama': provider 'site' is unhealthy (circuit open: 2 consecutive failures" \
        in message


def measure(pipeline: Pipeline, provider: str, model: str, ttft: float,
            tokens_per_second: float | None = None) -> None:
    for _ in range(5):
        pipeline.router.health.record_success(provider, model, ttft)
        if tokens_per_second is not None:
            pipeline.router.health.record_throughput(provider, model, int(tokens_per_second),
                                                     1.0)


def budgeted(key: ApiKey, max_latency_ms: int | None) -> RequestContext:
    ctx = context(key)
    ctx.max_latency_ms = max_latency_ms
    return ctx


def test_a_candidate_over_the_latency_budget_goes_after_those_within_it(key: ApiKey) -> None:
    providers = (FakeProvider("cloud", "cloud", "gpt"), FakeProvider("site", "site", "llama"),
                 FakeProvider("device", "device", "gemma"), FakeProvider("new", "site", "new"))
    pipeline, _ = pipeline_of(*providers)
    measure(pipeline, "cloud", "gpt", 2.0)
    measure(pipeline, "site", "llama", 0.2, tokens_per_second=10)
    measure(pipeline, "device", "gemma", 1.5)
    everything = ["cloud/gpt", "site/llama", "device/gemma", "new/new"]
    assert labels(pipeline, budgeted(key, None), request("auto")) == everything
    # 1s: gpt (2s) and gemma (1.5s) are over, the least slow of them first; "new" is
    # unmeasured, so within budget.
    assert labels(pipeline, budgeted(key, 1000), request("auto")) == [
        "site/llama", "new/new", "device/gemma", "cloud/gpt"]
    # 50 tokens at llama's 10 tokens/s: 5.2s expected, now over the budget too.
    long_answer = request("auto")
    long_answer.sampling.max_tokens = 50
    assert labels(pipeline, budgeted(key, 1000), long_answer) == [
        "new/new", "device/gemma", "cloud/gpt", "site/llama"]
    assert labels(pipeline, budgeted(key, 10_000), long_answer) == everything


def test_fastest_and_budget_use_the_p95_of_recent_samples(key: ApiKey) -> None:
    cloud, site = FakeProvider("cloud", "cloud", "gpt"), FakeProvider("site", "site", "llama")
    pipeline, _ = pipeline_of(cloud, site, strategy="fastest")
    measure(pipeline, "cloud", "gpt", 0.3)
    for ttft in [3.0] * 2 + [0.1] * 18:  # fast on average now, but its p95 is 3s
        pipeline.router.health.record_success("site", "llama", ttft)
    ctx = budgeted(key, None)
    assert labels(pipeline, ctx, request("auto")) == ["site/llama", "cloud/gpt"]
    assert labels(pipeline, budgeted(key, 1000), request("auto")) == ["cloud/gpt", "site/llama"]


def test_cheapest_and_balanced_rank_by_price(key: ApiKey) -> None:
    providers = (FakeProvider("cloud", "cloud", "gpt"), FakeProvider("mini", "cloud", "mini"),
                 FakeProvider("site", "site", "llama"))
    prices = {"gpt": PricingConfig(input=2_500_000, output=10_000_000),
              "mini": PricingConfig(input=150_000, output=600_000)}
    pipeline, _ = pipeline_of(*providers, price=prices, strategy="cheapest")
    assert labels(pipeline, context(key), request("auto")) == [
        "site/llama", "mini/mini", "cloud/gpt"]  # unpriced is free
    pipeline.router.aliases["auto"] = Alias("auto", ("gpt", "mini", "llama"), "balanced")
    measure(pipeline, "cloud", "gpt", 0.1)
    measure(pipeline, "mini", "mini", 0.2)
    measure(pipeline, "site", "llama", 0.9)
    # fastest: gpt 0, mini 1, llama 2; cheapest: llama 0, mini 1, gpt 2 -> a tie at 2 each,
    # broken by the configured order.
    assert labels(pipeline, context(key), request("auto")) == [
        "cloud/gpt", "mini/mini", "site/llama"]
    prices["mini"] = PricingConfig(input=5_000_000, output=20_000_000)  # cheapest: 2nd to 3rd
    assert labels(pipeline, context(key), request("auto")) == [
        "cloud/gpt", "site/llama", "mini/mini"]


def test_a_stream_records_time_to_first_token_and_tokens_per_second(key: ApiKey) -> None:
    site = FakeProvider("site", "site", "llama")
    pipeline, _ = pipeline_of(site)
    ctx = context(key)
    req = request("auto", stream=True)
    pipeline.decide_route(ctx, req)

    async def consume() -> str:
        deltas = await pipeline.call(ctx, req)
        assert not isinstance(deltas, Generation)
        return "".join([d.text async for d in pipeline._finish_stream(ctx, deltas)])

    assert asyncio.run(consume()) == "hi!"
    measured = pipeline.router.health.latency("site", "llama")
    assert measured is not None and len(measured.ttft.ring) == 1
    assert len(measured.tokens_per_second.ring) == 1  # 2 tokens after the first
    run(pipeline, context(key), request("auto"))  # a whole answer: 1 token
    assert len(measured.ttft.ring) == 2 and len(measured.tokens_per_second.ring) == 2


def test_a_stream_breaking_after_its_first_byte_counts_as_a_failure(key: ApiKey) -> None:
    class Cut(FakeProvider):
        async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
            yield Delta("h", None, Usage(1, 1))
            raise UpstreamError("cut", code="upstream_stream_cut")

    pipeline, _ = pipeline_of(Cut("site", "site", "llama"))
    ctx = context(key)
    req = request("auto", stream=True)
    pipeline.decide_route(ctx, req)

    async def consume() -> None:
        deltas = await pipeline.call(ctx, req)
        assert not isinstance(deltas, Generation)
        async for _ in pipeline._finish_stream(ctx, deltas):
            pass

    with pytest.raises(UpstreamError):
        asyncio.run(consume())
    assert pipeline.router.health.describe("site", [])["circuit"]["consecutive_failures"] == 1
