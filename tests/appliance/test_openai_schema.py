from __future__ import annotations

import json
from typing import Any

import pytest

from appliance.config import LimitsConfig
from appliance.errors import InvalidRequest, UnsupportedParameter
from appliance.openai_schema import parse_chat, parse_completion, parse_embeddings

LIMITS = LimitsConfig()


def chat(**body: Any) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                       **body}).encode()


def test_minimal_chat() -> None:
    request = parse_chat(chat(), LIMITS)
    assert request.model == "m" and request.is_chat
    assert request.messages is not None and request.messages[0].content == "hi"
    assert request.sampling.max_tokens is None and not request.stream


def test_sampling_fields() -> None:
    request = parse_chat(chat(max_completion_tokens=7, temperature=0.5, top_p=0.9, stop="END",
                              seed=3, stream=True, stream_options={"include_usage": True},
                              user="u1", n=1), LIMITS)
    s = request.sampling
    assert (s.max_tokens, s.temperature, s.top_p, s.stop, s.seed) == (7, 0.5, 0.9, ["END"], 3)
    assert request.stream and request.include_usage and request.user == "u1"


def test_text_parts_are_joined_and_developer_is_system() -> None:
    body = json.dumps({"model": "m", "messages": [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]}).encode()
    request = parse_chat(body, LIMITS)
    assert request.messages is not None
    assert [(m.role, m.content) for m in request.messages] == [("system", "be brief"),
                                                                ("user", "ab")]


@pytest.mark.parametrize(("body", "param", "kind"), [
    (chat(n=3), "n", UnsupportedParameter),
    (chat(tools=[]), "tools", UnsupportedParameter),
    (chat(logit_bias={"1": 2}), "logit_bias", UnsupportedParameter),
    (chat(whatever=1), "whatever", UnsupportedParameter),
    (chat(top_p=2), "top_p", InvalidRequest),
    (chat(max_tokens=100000), "max_tokens", InvalidRequest),
    (chat(stop=["a", "b", "c", "d", "e"]), "stop", InvalidRequest),
    (chat(stop=[""]), "stop", InvalidRequest),
    (b'{"messages": []}', "model", InvalidRequest),
    (b'{"model": "m"}', "messages", InvalidRequest),
    (b'{"model": "m", "messages": [{"role": "user"}]}', "messages[0].content", InvalidRequest),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x", "name": "bob"}]}',
     "messages[0].name", UnsupportedParameter),
    (b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}',
     "messages[0].content[0].text", InvalidRequest),
    (b'[1, 2]', None, InvalidRequest),
])
def test_errors_name_the_param(body: bytes, param: str | None, kind: type[Exception]) -> None:
    with pytest.raises(kind) as info:
        parse_chat(body, LIMITS)
    assert getattr(info.value, "param") == param
    assert getattr(info.value, "status") == 400


def test_malformed_json() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat(b"{", LIMITS)
    assert info.value.code == "invalid_json"


def test_message_count_limit() -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}] * 3})
    with pytest.raises(InvalidRequest) as info:
        parse_chat(body.encode(), LimitsConfig(max_messages=2))
    assert info.value.param == "messages"


def test_completion_prompt() -> None:
    assert parse_completion(b'{"model": "m", "prompt": "abc"}', LIMITS).prompt == "abc"
    assert parse_completion(b'{"model": "m", "prompt": ["abc"]}', LIMITS).prompt == "abc"
    with pytest.raises(UnsupportedParameter):
        parse_completion(b'{"model": "m", "prompt": ["a", "b"]}', LIMITS)
    with pytest.raises(UnsupportedParameter):
        parse_completion(b'{"model": "m", "prompt": "a", "echo": true}', LIMITS)


def test_embeddings_body() -> None:
    request = parse_embeddings(b'{"model": "e", "input": "x"}', LIMITS)
    assert request.inputs == ["x"] and request.encoding_format == "float"
    request = parse_embeddings(b'{"model": "e", "input": ["x", "y"], '
                               b'"encoding_format": "base64"}', LIMITS)
    assert request.inputs == ["x", "y"] and request.encoding_format == "base64"
    for body, param in ((b'{"model": "e", "input": []}', "input"),
                        (b'{"model": "e", "input": ["a", ""]}', "input[1]"),
                        (b'{"model": "e", "input": "a", "dimensions": 8}', "dimensions"),
                        (b'{"model": "e", "input": "a", "encoding_format": "hex"}',
                         "encoding_format")):
        with pytest.raises(InvalidRequest) as info:
            parse_embeddings(body, LIMITS)
        assert info.value.param == param
