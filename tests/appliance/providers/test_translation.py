"""Pure translation per provider, and the adapters over the in-process mock transport."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import msgspec
import pytest

from appliance.errors import ContextLengthExceeded, InvalidRequest, UpstreamError
from appliance.providers import anthropic, gemini, openai
from appliance.providers.config import ProviderConfig, TimeoutsConfig
from appliance.providers.credentials import Secret
from appliance.providers.http import StreamState, retry_after
from appliance.providers.registry import PROVIDER_KINDS
from appliance.providers.transport import UpstreamTimeout, mock_transport
from appliance.types import GenerationRequest, Message, SamplingParams, Usage


def chat(**sampling: Any) -> GenerationRequest:
    return GenerationRequest("m", SamplingParams(**sampling), messages=[
        Message("system", "Be brief."), Message("user", "Hi"), Message("assistant", "Hello"),
        Message("user", "Again")])


def test_openai_request_asks_for_stream_usage() -> None:
    body = openai.build_request(chat(max_tokens=5, stop=["x"], seed=3), "gpt", stream=True)
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_completion_tokens"] == 5 and body["seed"] == 3 and body["stop"] == ["x"]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "user" not in body and "temperature" not in body


def test_openai_stream_events() -> None:
    state = StreamState(Usage(1, 0))
    assert openai.parse_stream_event(
        '{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}', state) == "Hi"
    openai.parse_stream_event('{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}',
                              state)
    openai.parse_stream_event('{"choices":[],"usage":{"prompt_tokens":4,'
                              '"completion_tokens":1,"total_tokens":5}}', state)
    assert openai.parse_stream_event("[DONE]", state) is None
    assert (state.finish_reason, state.done, state.usage) == ("length", True, Usage(4, 1))


def test_openai_error_allow_lists_context_length() -> None:
    body = b'{"error":{"message":"too long: secret text","type":"invalid_request_error",' \
           b'"code":"context_length_exceeded"}}'
    error = openai.map_error("p", 400, {}, body)
    assert isinstance(error, ContextLengthExceeded) and "secret" not in error.message
    assert type(openai.map_error("p", 400, {}, b"not json")) is InvalidRequest


def test_anthropic_request() -> None:
    body = anthropic.build_request(chat(stop=["END"], temperature=0.2), "claude", stream=True)
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == anthropic.DEFAULT_MAX_TOKENS
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["stop_sequences"] == ["END"] and body["stream"] is True


def test_anthropic_stream_events() -> None:
    state = StreamState(Usage(0, 0))
    events = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1}}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
         "usage": {"output_tokens": 3}},
        {"type": "message_stop"}]
    texts = [anthropic.parse_stream_event(json.dumps(e), state) for e in events]
    assert texts == [None, "Hi", None, None]
    assert (state.usage, state.finish_reason, state.done) == (Usage(9, 3), "length", True)


def test_anthropic_overloaded_event_maps_like_529() -> None:
    from appliance.providers.transport import UpstreamStatus

    with pytest.raises(UpstreamStatus) as caught:
        anthropic.parse_stream_event(
            '{"type":"error","error":{"type":"overloaded_error","message":"x"}}',
            StreamState(Usage()))
    assert caught.value.response.status == 529


def test_gemini_request() -> None:
    body = gemini.build_request(chat(max_tokens=7, top_p=0.5, seed=1, stop=["s"]))
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["generationConfig"] == {"maxOutputTokens": 7, "topP": 0.5, "seed": 1,
                                        "stopSequences": ["s"]}


def test_gemini_response_and_bad_key() -> None:
    result = gemini.parse_response({
        "candidates": [{"content": {"parts": [{"text": "a"}, {"text": "b"}]},
                        "finishReason": "MAX_TOKENS"}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2,
                          "thoughtsTokenCount": 5}}, "g")
    assert (result.text, result.finish_reason, result.usage) == ("ab", "length", Usage(3, 7))
    bad_key = b'{"error":{"code":400,"status":"INVALID_ARGUMENT","details":[{"reason":' \
              b'"API_KEY_INVALID"}]}}'
    assert gemini.map_error("g", 400, {}, bad_key).code == "upstream_auth_failed"


def test_retry_after_forms() -> None:
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after-ms": "1500"}) == 1.5
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after({}) is None and retry_after({"retry-after": "soon"}) is None


def config(kind: str, **extra: Any) -> ProviderConfig:
    raw: dict[str, Any] = {"name": "p", "kind": kind, "credential": "env:K",
                           "models": ["m"], "base_url": "http://up/v1", **extra}
    return msgspec.convert(raw, ProviderConfig)


def test_azure_over_mock_transport_uses_deployment_header_and_api_version() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={
            "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

    cfg = config("azure_openai", models={"m": "dep/1"}, base_url="https://r.example")
    provider = PROVIDER_KINDS["azure_openai"](cfg, Secret("k-123"))
    provider.transport = mock_transport(handler, base_url="https://r.example")
    provider.transport.headers = provider.auth_headers()
    result = asyncio.run(provider.generate(chat()))
    assert result.text == "ok"
    assert seen[0].url.raw_path.startswith(b"/openai/deployments/dep%2F1/chat/completions?")
    assert seen[0].url.params["api-version"] == "2024-10-21"
    assert seen[0].headers["api-key"] == "k-123" and "authorization" not in seen[0].headers
    assert json.loads(seen[0].content)["model"] == "dep/1"


def test_mock_transport_first_byte_timeout() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(1)
        return httpx.Response(200, json={})

    provider = PROVIDER_KINDS["openai"](config("openai"), Secret("k"))
    provider.transport = mock_transport(handler, timeouts=TimeoutsConfig(first_byte=0.05))
    with pytest.raises(UpstreamTimeout):
        asyncio.run(provider.generate(chat()))


def test_mock_transport_malformed_json() -> None:
    provider = PROVIDER_KINDS["anthropic"](config("anthropic", base_url=""), Secret("k"))
    provider.transport = mock_transport(lambda r: httpx.Response(200, content=b"{"))
    with pytest.raises(UpstreamError) as caught:
        asyncio.run(provider.generate(chat()))
    assert caught.value.code == "upstream_malformed_response"
