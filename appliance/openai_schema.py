"""Parse and validate OpenAI request bodies into the internal types.

Every field OpenAI defines is known here; the ones the appliance does not support yet are
refused with 400 naming the field rather than silently ignored, and unknown fields are refused
the way OpenAI refuses them. Errors carry ``param`` in OpenAI's notation
(``messages[0].content``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from appliance.config import LimitsConfig
from appliance.errors import InvalidRequest, UnsupportedParameter
from appliance.validation import describe
from appliance.types import EmbeddingRequest, GenerationRequest, Message, SamplingParams

Temperature = Annotated[float, msgspec.Meta(ge=0, le=2)]
TopP = Annotated[float, msgspec.Meta(ge=0, le=1)]
Penalty = Annotated[float, msgspec.Meta(ge=-2, le=2)]
TokenCount = Annotated[int, msgspec.Meta(ge=1)]

UNSET: Any = msgspec.UNSET


class StreamOptions(msgspec.Struct, forbid_unknown_fields=True):
    include_usage: bool = False


class WireMessage(msgspec.Struct, forbid_unknown_fields=True):
    role: str
    content: str | list[dict[str, Any]] | None = None
    name: Any = UNSET
    tool_calls: Any = UNSET
    tool_call_id: Any = UNSET
    function_call: Any = UNSET
    refusal: Any = UNSET
    audio: Any = UNSET


class _Sampling(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    model: str
    max_tokens: TokenCount | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    # Known to OpenAI, not supported yet: refused when given a non-default value.
    n: int | None = None
    logprobs: Any = UNSET
    top_logprobs: Any = UNSET
    logit_bias: Any = UNSET


class ChatCompletionBody(_Sampling, kw_only=True):
    messages: list[WireMessage]
    max_completion_tokens: TokenCount | None = None
    response_format: Any = UNSET
    tools: Any = UNSET
    tool_choice: Any = UNSET
    parallel_tool_calls: Any = UNSET
    functions: Any = UNSET
    function_call: Any = UNSET
    modalities: Any = UNSET
    audio: Any = UNSET
    prediction: Any = UNSET
    reasoning_effort: Any = UNSET
    service_tier: Any = UNSET
    store: Any = UNSET
    metadata: Any = UNSET
    web_search_options: Any = UNSET


class CompletionBody(_Sampling, kw_only=True):
    prompt: Any
    echo: Any = UNSET
    best_of: Any = UNSET
    suffix: Any = UNSET


class EmbeddingBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None


def _validation_error(exc: msgspec.ValidationError) -> InvalidRequest:
    """An InvalidRequest whose ``param`` is the offending field (``messages[0].content``)."""
    problem = describe(exc)
    param = problem.path or None
    if problem.kind == "unknown":
        return UnsupportedParameter(f"Unrecognized request argument supplied: {param}",
                                    param=param)
    if problem.kind == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param,
                              code="missing_required_parameter")
    return InvalidRequest(f"Invalid value for '{param or 'body'}': {problem.text}", param=param,
                          code="invalid_value")


def decode(body: bytes, kind: type[Any]) -> Any:
    """Decode a JSON body into ``kind``; errors are 400s naming the field."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from exc
    except msgspec.DecodeError as exc:
        raise InvalidRequest(
            "We could not parse the JSON body of your request: it is not valid JSON.",
            code="invalid_json",
        ) from exc


def _unsupported(param: str, what: str) -> UnsupportedParameter:
    return UnsupportedParameter(f"'{param}' is not supported by this appliance yet ({what}).",
                                param=param)


def _check_unsupported(body: _Sampling, fields: tuple[str, ...]) -> None:
    if body.n is not None and body.n != 1:
        raise _unsupported("n", "only one choice per request")
    if body.logprobs not in (UNSET, None, False):
        raise _unsupported("logprobs", "log probabilities")
    for name in fields:
        if getattr(body, name) is not UNSET:
            raise _unsupported(name, "unsupported feature")


def _sampling(body: _Sampling, limits: LimitsConfig, max_tokens: int | None) -> SamplingParams:
    if body.stream_options is not None and not body.stream:
        raise InvalidRequest("The 'stream_options' parameter is only allowed when 'stream' is "
                             "enabled.", param="stream_options")
    if max_tokens is not None and max_tokens > limits.max_completion_tokens:
        raise InvalidRequest(f"max_tokens is too large: {max_tokens}. This appliance allows at "
                             f"most {limits.max_completion_tokens}.", param="max_tokens",
                             code="invalid_value")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > limits.max_stop_sequences:
        raise InvalidRequest(f"'stop' accepts at most {limits.max_stop_sequences} sequences.",
                             param="stop")
    if any(not s for s in stop):
        raise InvalidRequest("'stop' sequences must not be empty.", param="stop")
    return SamplingParams(max_tokens=max_tokens, temperature=body.temperature, top_p=body.top_p,
                          stop=stop, seed=body.seed, presence_penalty=body.presence_penalty,
                          frequency_penalty=body.frequency_penalty)


_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _message(index: int, wire: WireMessage) -> Message:
    where = f"messages[{index}]"
    role = _ROLES.get(wire.role)
    if role is None:
        if wire.role in ("tool", "function"):
            raise _unsupported(f"{where}.role", f"role '{wire.role}'")
        raise InvalidRequest(f"Invalid value for '{where}.role': '{wire.role}'. Supported: "
                             "system, developer, user, assistant.", param=f"{where}.role",
                             code="invalid_value")
    for name in ("name", "tool_calls", "tool_call_id", "function_call", "refusal", "audio"):
        if getattr(wire, name) is not UNSET:
            raise _unsupported(f"{where}.{name}", "unsupported message field")
    content = wire.content
    if content is None:
        raise InvalidRequest(f"Missing required parameter: '{where}.content'.",
                             param=f"{where}.content", code="missing_required_parameter")
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            kind = part.get("type")
            if kind != "text":
                raise _unsupported(f"{where}.content[{j}].type", f"content part type {kind!r}")
            extra = set(part) - {"type", "text"}
            if extra:
                raise _unsupported(f"{where}.content[{j}].{sorted(extra)[0]}", "part field")
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidRequest(f"Invalid value for '{where}.content[{j}].text': expected a "
                                     "string.", param=f"{where}.content[{j}].text",
                                     code="invalid_value")
            texts.append(text)
        content = "".join(texts)
    return Message(role=role, content=content)  # type: ignore[arg-type]


def parse_chat(body: bytes, limits: LimitsConfig) -> GenerationRequest:
    wire: ChatCompletionBody = decode(body, ChatCompletionBody)
    _check_unsupported(wire, ("top_logprobs", "logit_bias", "response_format", "tools",
                              "tool_choice", "parallel_tool_calls", "functions", "function_call",
                              "modalities", "audio", "prediction", "reasoning_effort",
                              "service_tier", "store", "metadata", "web_search_options"))
    if not wire.messages:
        raise InvalidRequest("'messages' must contain at least one message.", param="messages")
    if len(wire.messages) > limits.max_messages:
        raise InvalidRequest(f"'messages' has {len(wire.messages)} messages; this appliance "
                             f"allows at most {limits.max_messages}.", param="messages")
    messages = [_message(i, m) for i, m in enumerate(wire.messages)]
    max_tokens = wire.max_completion_tokens or wire.max_tokens
    return GenerationRequest(
        model=wire.model, sampling=_sampling(wire, limits, max_tokens), messages=messages,
        stream=wire.stream, user=wire.user,
        include_usage=bool(wire.stream_options and wire.stream_options.include_usage))


def parse_completion(body: bytes, limits: LimitsConfig) -> GenerationRequest:
    wire: CompletionBody = decode(body, CompletionBody)
    _check_unsupported(wire, ("top_logprobs", "logit_bias", "echo", "best_of", "suffix"))
    prompt = wire.prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise _unsupported("prompt", "only a single string prompt")
    return GenerationRequest(
        model=wire.model, sampling=_sampling(wire, limits, wire.max_tokens), prompt=prompt,
        stream=wire.stream, user=wire.user,
        include_usage=bool(wire.stream_options and wire.stream_options.include_usage))


def parse_embeddings(body: bytes, limits: LimitsConfig) -> EmbeddingRequest:
    wire: EmbeddingBody = decode(body, EmbeddingBody)
    if wire.dimensions is not None:
        raise _unsupported("dimensions", "the local embedding model has fixed dimensions")
    inputs = [wire.input] if isinstance(wire.input, str) else wire.input
    if not inputs:
        raise InvalidRequest("'input' must not be empty.", param="input")
    if len(inputs) > limits.max_embedding_inputs:
        raise InvalidRequest(f"'input' has {len(inputs)} items; at most "
                             f"{limits.max_embedding_inputs} are allowed.", param="input")
    for i, text in enumerate(inputs):
        if not text:
            raise InvalidRequest(f"'input[{i}]' must not be an empty string.",
                                 param=f"input[{i}]")
    return EmbeddingRequest(model=wire.model, inputs=inputs,
                            encoding_format=wire.encoding_format, user=wire.user)
