"""One contract suite, run against every HTTP provider kind through a real mock upstream
process that speaks each provider's wire format (``tests/mock_upstream``).

Capability flags: a kind's ``unsupported`` sampling fields are refused before any call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import msgspec
import pytest

from appliance.errors import (
    ApplianceError,
    RateLimited,
    UnsupportedParameter,
    UpstreamError,
)
from appliance.providers.config import ProviderConfig
from appliance.providers.http import HTTPProvider
from appliance.providers.registry import PROVIDER_KINDS, build_provider
from appliance.errors import UpstreamTimeout
from appliance.types import Delta, GenerationRequest, Message, SamplingParams
from tests.mock_upstream import mock_upstream

KEY = "sk-mock-SECRET-7d1f0a9c3b"
WRONG_KEY = "sk-wrong-SECRET-55aa01"
KINDS = sorted(PROVIDER_KINDS)
T = TypeVar("T")


@pytest.fixture(scope="session")
def upstream() -> Iterator[str]:
    with mock_upstream(KEY, slow_seconds=2.0) as url:
        yield url


def settings(kind: str, url: str) -> dict[str, Any]:
    table: dict[str, dict[str, Any]] = {
        "openai": {"base_url": url + "/v1", "models": ["gpt-mock"]},
        "azure_openai": {"base_url": url, "models": {"gpt-mock": "gpt-deployment"},
                         "api_version": "2024-10-21"},
        "anthropic": {"base_url": url, "models": ["claude-mock"]},
        "gemini": {"base_url": url, "models": ["gemini-mock"]},
        "openai_compatible": {"base_url": url + "/v1", "models": ["llama-mock"],
                              "zone": "site"},
    }
    return table[kind]


#: The upstream HTTP client the suite runs on (``transport_backend`` runs it on each).
BACKEND = ["http1"]


@pytest.fixture(params=["http1", "aiohttp"], autouse=True)
def transport_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every contract holds on both of the provider config's ``transport`` choices."""
    BACKEND[0] = request.param
    yield request.param
    BACKEND[0] = "http1"


def make(kind: str, url: str, key: str = KEY, **timeouts: float) -> HTTPProvider:
    raw = {"name": f"mock-{kind}", "kind": kind, "credential": "env:TEST_UPSTREAM_KEY",
           "timeouts": timeouts, "transport": BACKEND[0], **settings(kind, url)}
    return build_provider(msgspec.convert(raw, ProviderConfig),
                          environ={"TEST_UPSTREAM_KEY": key})


def request(text: str = "tell me three things", stream: bool = False,
            **sampling: Any) -> GenerationRequest:
    return GenerationRequest(model="", sampling=SamplingParams(**sampling), stream=stream,
                             messages=[Message("system", "Be brief."), Message("user", text)])


def run(provider: HTTPProvider, work: Callable[[HTTPProvider], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await work(provider)
        finally:
            await provider.close()
    return asyncio.run(main())


def generate(provider: HTTPProvider, req: GenerationRequest) -> Any:
    req.model = provider.models()[0].id
    return run(provider, lambda p: p.generate(req))


def stream(provider: HTTPProvider, req: GenerationRequest) -> list[Delta]:
    req.model = provider.models()[0].id

    async def collect(p: HTTPProvider) -> list[Delta]:
        deltas: AsyncIterator[Delta] = p.stream(req)
        return [d async for d in deltas]
    return run(provider, collect)


def stats(url: str) -> dict[str, int]:
    return dict(httpx.get(url + "/_stats").json())


@pytest.mark.parametrize("kind", KINDS)
def test_models_are_listed_from_config(kind: str, upstream: str) -> None:
    provider = make(kind, upstream)
    assert [m.id for m in provider.models()] == list(settings(kind, upstream)["models"])
    assert provider.zone == ("site" if kind == "openai_compatible" else "cloud")


@pytest.mark.parametrize("kind", KINDS)
def test_generate(kind: str, upstream: str) -> None:
    result = generate(make(kind, upstream), request())
    assert result.text == "This is a mock reply to 4 words."
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (6, 8)
    assert result.model == make(kind, upstream).models()[0].id


@pytest.mark.parametrize("kind", KINDS)
def test_stream_has_deltas_cumulative_usage_and_finish(kind: str, upstream: str) -> None:
    deltas = stream(make(kind, upstream), request(stream=True))
    assert len(deltas) > 2
    assert "".join(d.text for d in deltas) == "This is a mock reply to 4 words."
    assert [d.finish_reason for d in deltas[:-1]] == [None] * (len(deltas) - 1)
    assert deltas[-1].finish_reason == "stop"
    totals = [d.usage.completion_tokens for d in deltas if d.usage is not None]
    assert len(totals) == len(deltas) and totals == sorted(totals)
    final = deltas[-1].usage
    assert final is not None and (final.prompt_tokens, final.completion_tokens) == (6, 8)


@pytest.mark.parametrize("kind", KINDS)
def test_length_finish(kind: str, upstream: str) -> None:
    result = generate(make(kind, upstream), request(max_tokens=3))
    assert (result.text, result.finish_reason, result.usage.completion_tokens) == (
        "This is a", "length", 3)
    deltas = stream(make(kind, upstream), request(stream=True, max_tokens=3))
    assert deltas[-1].finish_reason == "length"
    assert "".join(d.text for d in deltas) == "This is a"


ERRORS: list[tuple[str, type[ApplianceError], int, str]] = [
    ("401", UpstreamError, 502, "upstream_auth_failed"),
    ("403", UpstreamError, 502, "upstream_auth_failed"),
    ("404", UpstreamError, 502, "upstream_not_found"),
    ("429", RateLimited, 429, "rate_limit_exceeded"),
    ("500", UpstreamError, 502, "upstream_unavailable"),
    ("503", UpstreamError, 502, "upstream_overloaded"),
    ("529", UpstreamError, 502, "upstream_overloaded"),
    ("malformed", UpstreamError, 502, "upstream_malformed_response"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("what", "cls", "status", "code"), ERRORS)
@pytest.mark.parametrize("streamed", [False, True], ids=["generate", "stream"])
def test_upstream_errors_are_mapped(kind: str, what: str, cls: type[ApplianceError],
                                    status: int, code: str, streamed: bool,
                                    upstream: str) -> None:
    provider = make(kind, upstream)
    req = request(f"mock:{what} please", stream=streamed)
    with pytest.raises(cls) as caught:
        stream(provider, req) if streamed else generate(provider, req)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert type(caught.value) is cls
    if what == "429":
        assert caught.value.retry_after == 7
        assert caught.value.headers()["retry-after"] == "7"


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_credential_never_leaks(kind: str, upstream: str,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for streamed in (False, True):
        provider = make(kind, upstream, key=WRONG_KEY)
        with pytest.raises(UpstreamError) as caught:
            req = request(stream=streamed)
            stream(provider, req) if streamed else generate(provider, req)
        error = caught.value
        assert error.code == "upstream_auth_failed" and error.status == 502
        shown = f"{error} {error!r} {error.to_body()} {error.headers()} {provider.secret!r}"
        assert WRONG_KEY not in shown and "SECRET" not in shown
    assert caplog.records, "the upstream failure should be logged"
    assert "SECRET" not in caplog.text


@pytest.mark.parametrize("kind", KINDS)
def test_slow_first_byte_times_out(kind: str, upstream: str) -> None:
    with pytest.raises(UpstreamTimeout) as caught:
        generate(make(kind, upstream, first_byte=0.3), request("mock:slow_first_byte"))
    assert caught.value.status == 504 and "first byte" in caught.value.message


@pytest.mark.parametrize("kind", KINDS)
def test_stalled_stream_times_out(kind: str, upstream: str) -> None:
    with pytest.raises(UpstreamTimeout) as caught:
        stream(make(kind, upstream, between_chunks=0.3), request("mock:slow_chunks"))
    assert "between chunks" in caught.value.message
    with pytest.raises(UpstreamTimeout) as caught:
        stream(make(kind, upstream, first_byte=0.5, total=0.6),
               request("mock:slow_chunks"))
    assert "total" in caught.value.message


@pytest.mark.parametrize("kind", KINDS)
def test_stream_cut_midway(kind: str, upstream: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        stream(make(kind, upstream), request("mock:cut", stream=True))
    assert caught.value.code in ("upstream_stream_cut", "upstream_connection_error")
    assert not isinstance(caught.value, UpstreamTimeout)


@pytest.mark.parametrize("kind", KINDS)
def test_unreachable_upstream(kind: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        generate(make(kind, "http://127.0.0.1:9"), request())
    assert caught.value.code == "upstream_unreachable"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("param", ["seed", "presence_penalty", "frequency_penalty"])
def test_capability_flags(kind: str, param: str, upstream: str) -> None:
    provider = make(kind, upstream)
    value: dict[str, Any] = {param: 1 if param == "seed" else 0.5}
    if param in provider.unsupported:
        httpx.post(upstream + "/_reset")
        with pytest.raises(UnsupportedParameter) as caught:
            generate(provider, request(**value))
        assert caught.value.param == param and caught.value.status == 400
        assert stats(upstream) == {}, "a refused request must not reach the upstream"
    else:
        assert generate(provider, request(**value)).finish_reason == "stop"


def test_openai_compatible_estimates_missing_usage(upstream: str) -> None:
    result = generate(make("openai_compatible", upstream), request("mock:no_usage"))
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    deltas = stream(make("openai_compatible", upstream), request("mock:no_usage"))
    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].usage is not None and deltas[-1].usage.completion_tokens > 0
    with pytest.raises(UpstreamError) as caught:  # OpenAI itself always reports usage
        generate(make("openai", upstream), request("mock:no_usage"))
    assert caught.value.code == "upstream_malformed_response"
