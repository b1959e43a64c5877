"""The OpenAI API of a running appliance, driven by the official ``openai`` client."""

from __future__ import annotations

import asyncio
import base64
import struct

import httpx
import openai
import pytest

from tests.conftest import ServerProcess

CHAT_MODEL = "gemma-3-270m"
EMBED_MODEL = "all-minilm-l6-v2"
HELLO = [{"role": "user", "content": "Write a short list of three fruits."}]


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.admin_key, max_retries=0)


def test_chat_completion_with_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=CHAT_MODEL, messages=HELLO, max_tokens=12,
                                           temperature=0)
    choice = reply.choices[0]
    assert reply.object == "chat.completion"
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 5
    assert 0 < reply.usage.completion_tokens <= 12
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    if choice.finish_reason == "length":
        assert reply.usage.completion_tokens == 12


def test_max_tokens_gives_length(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Count from one to one hundred in words."}]
    reply = client.chat.completions.create(model=CHAT_MODEL, messages=messages,
                                           max_completion_tokens=3, temperature=0)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 3


def test_content_as_text_parts_and_system_message(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=CHAT_MODEL, max_tokens=4, seed=7, top_p=0.9, user="ward-7",
        messages=[{"role": "system", "content": "Answer briefly."},
                  {"role": "user", "content": [{"type": "text", "text": "Name a colour."}]}])
    assert reply.usage is not None and reply.usage.completion_tokens >= 1


def test_seed_makes_sampling_repeatable(client: openai.OpenAI) -> None:
    texts = {client.chat.completions.create(model=CHAT_MODEL, messages=HELLO, max_tokens=10,
                                            temperature=1.0, seed=1234).choices[0].message.content
             for _ in range(2)}
    assert len(texts) == 1


def test_stop_sequence_is_honoured(client: openai.OpenAI) -> None:
    free = client.chat.completions.create(model=CHAT_MODEL, messages=HELLO, max_tokens=24,
                                          temperature=0).choices[0].message.content or ""
    assert len(free) > 4
    stop = free[2:4]
    cut = client.chat.completions.create(model=CHAT_MODEL, messages=HELLO, max_tokens=24,
                                         temperature=0, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == free[: free.index(stop)]


def test_streaming_sends_chunks_then_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model=CHAT_MODEL, messages=HELLO, max_tokens=16,
                                            temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) > 1, "streaming must send more than one content chunk"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason in ("stop", "length")
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens >= len(content)
    assert all(c.usage is None for c in chunks[:-1])


def test_completions_endpoint(client: openai.OpenAI) -> None:
    reply = client.completions.create(model=CHAT_MODEL, prompt="The sky is", max_tokens=5,
                                      temperature=0)
    assert reply.object == "text_completion"
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage is not None and reply.usage.completion_tokens <= 5
    chunks = list(client.completions.create(model=CHAT_MODEL, prompt="The sky is",
                                            max_tokens=5, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == reply.choices[0].text


def test_async_client_chat_and_stream(server: ServerProcess) -> None:
    async def run() -> tuple[str, int]:
        aclient = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.admin_key,
                                     max_retries=0)
        reply = await aclient.chat.completions.create(model=CHAT_MODEL, messages=HELLO,
                                                      max_tokens=6, temperature=0)
        pieces = 0
        stream = await aclient.chat.completions.create(model=CHAT_MODEL, messages=HELLO,
                                                       max_tokens=6, temperature=0, stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces += 1
        await aclient.close()
        return reply.choices[0].message.content or "", pieces

    text, pieces = asyncio.run(run())
    assert text and pieces > 1


def test_embeddings_float_and_base64(client: openai.OpenAI) -> None:
    reply = client.embeddings.create(model=EMBED_MODEL, input=["The patient has a fever.",
                                                              "A fever was noted.",
                                                              "Stock prices fell today."])
    vectors = [d.embedding for d in reply.data]
    assert [len(v) for v in vectors] == [384, 384, 384]
    for v in vectors:
        assert abs(sum(x * x for x in v) - 1.0) < 1e-3

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
    assert reply.usage.prompt_tokens > 0
    raw = client.embeddings.with_raw_response.create(model=EMBED_MODEL, input="hello",
                                                     encoding_format="base64")
    encoded = raw.http_response.json()["data"][0]["embedding"]
    decoded = struct.unpack("<384f", base64.b64decode(encoded))
    single = client.embeddings.create(model=EMBED_MODEL, input="hello").data[0].embedding
    assert max(abs(a - b) for a, b in zip(decoded, single, strict=True)) < 1e-6


def test_models_lists_chat_and_embedding(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {CHAT_MODEL, EMBED_MODEL} <= ids


def test_missing_and_wrong_key_are_401(server: ServerProcess) -> None:
    bad = openai.OpenAI(base_url=server.base_url, api_key="sk-appl-not-a-real-key",
                        max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model=CHAT_MODEL, messages=HELLO)
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    response = httpx.get(server.url + "/v1/models")
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=HELLO)
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):  # an embedding model cannot chat
        client.chat.completions.create(model=EMBED_MODEL, messages=HELLO)


@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"logprobs": True}, "logprobs"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"frobnicate": 1}, "frobnicate"),
    ({"temperature": 3}, "temperature"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
])
def test_unsupported_or_invalid_fields_are_400_naming_the_field(
        client: openai.OpenAI, extra: dict[str, object], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=CHAT_MODEL, messages=HELLO, extra_body=extra)
    assert info.value.param == param


@pytest.mark.parametrize(("messages", "param"), [
    ([{"role": "user", "content": [{"type": "image_url",
                                    "image_url": {"url": "http://x/y.png"}}]}],
     "messages[0].content[0].type"),
    ([{"role": "tool", "content": "x", "tool_call_id": "1"}], "messages[0].role"),
    ([{"role": "wizard", "content": "x"}], "messages[0].role"),
    ([{"role": "user", "content": 5}], "messages[0].content"),
    ([], "messages"),
])
def test_bad_messages_are_400_naming_the_field(client: openai.OpenAI,
                                               messages: list[object], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=CHAT_MODEL, messages=messages)  # type: ignore[arg-type]
    assert info.value.param == param


def test_too_many_messages_and_context_overflow(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=CHAT_MODEL, messages=HELLO * 300)
    assert info.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=CHAT_MODEL, messages=HELLO, max_tokens=4096)
    assert info.value.code == "context_length_exceeded"
    huge = [{"role": "user", "content": "word " * 5000}]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=CHAT_MODEL, messages=huge)
    assert info.value.code == "context_length_exceeded"


def test_malformed_json_and_oversized_body(server: ServerProcess) -> None:
    with server.client() as http:
        response = http.post("/v1/chat/completions", content=b"{not json",
                             headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_json"
        big = b'{"model": "' + b"x" * (1024 * 1024 + 10) + b'"}'
        response = http.post("/v1/chat/completions", content=big)
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "invalid_request_error"

        def chunks() -> object:
            for _ in range(20):
                yield b"x" * 65536  # no Content-Length: chunked upload past the limit

        response = http.post("/v1/chat/completions", content=chunks())  # type: ignore[arg-type]
        assert response.status_code == 413


def test_request_ids_and_routing_headers(server: ServerProcess) -> None:
    with server.client() as http:
        response = http.post("/v1/chat/completions", headers={"x-request-id": "trace-42.a"},
                             json={"model": CHAT_MODEL, "messages": HELLO, "max_tokens": 2})
        assert response.headers["x-request-id"] == "trace-42.a"
        assert response.headers["x-appliance-zone"] == "device"
        assert response.headers["x-appliance-route"] == "local/" + CHAT_MODEL
        assert response.headers["x-appliance-sensitivity"] == "public"
        invalid = http.get("/v1/models", headers={"x-request-id": "bad id\twith spaces"})
        assert invalid.headers["x-request-id"].startswith("req_")
        for path, status in (("/v1/nothing", 404), ("/healthz", 200)):
            response = http.get(path)
            assert response.status_code == status
            assert response.headers["x-request-id"].startswith("req_")
        assert http.get("/v1/nothing").json()["error"]["code"] == "not_found"
        assert http.get("/v1/chat/completions").status_code == 405


def test_health_and_readiness(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"model_loaded": True, "database_writable": True}


def test_sensitivity_is_classified_and_declarations_only_raise_it(server: ServerProcess) -> None:
    phi = [{"role": "user", "content": "Patient John Smith, MRN 12345678, has pneumonia."}]

    def level(messages: list[dict[str, str]], declared: str | None = None) -> httpx.Response:
        headers = {"x-data-classification": declared} if declared else {}
        with server.client() as http:
            return http.post("/v1/chat/completions", headers=headers, json={
                "model": CHAT_MODEL, "messages": messages, "max_tokens": 1})

    assert level(phi).headers["x-appliance-sensitivity"] == "restricted"
    assert level(phi, "public").headers["x-appliance-sensitivity"] == "restricted"
    assert level(HELLO, "confidential").headers["x-appliance-sensitivity"] == "confidential"
    bad = level(HELLO, "top-secret")
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "x-data-classification"


RATELIMIT_HEADERS = ("x-ratelimit-limit-requests", "x-ratelimit-limit-tokens",
                     "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens",
                     "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")


def test_every_response_carries_the_ratelimit_headers(server: ServerProcess) -> None:
    """Nothing configured: a key still has default per-minute limits, so a whole answer, a
    stream and a refused request all carry OpenAI's six headers."""
    body = {"model": CHAT_MODEL, "messages": HELLO, "max_tokens": 2}
    with server.client() as http:
        whole = http.post("/v1/chat/completions", json=body)
        with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as s:
            s.read()
            streamed = s.headers
        bad = http.post("/v1/chat/completions", json={**body, "temperature": "hot"})
    assert whole.status_code == 200 and bad.status_code == 400
    for headers in (whole.headers, streamed, bad.headers):
        assert all(h in headers for h in RATELIMIT_HEADERS), headers
    assert whole.headers["x-ratelimit-limit-requests"] == "600"
    assert 0 <= int(whole.headers["x-ratelimit-remaining-tokens"]) <= 1_000_000
