"""OpenAI's Chat Completions API (zone ``cloud``).

The translation here is reused by Azure OpenAI and by OpenAI-compatible servers, which
override only what differs (URL, auth, the max-tokens field, missing usage). Streams always
ask for usage (``stream_options.include_usage``) so that a stream is charged what the upstream
counted, whether or not the client asked to see it. The end user's ``user`` id is not sent
upstream: it identifies a person to a third party.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance.errors import ApplianceError
from appliance.providers.http import (
    HTTPProvider,
    StreamState,
    chat_messages,
    decode_json,
    error_for_status,
    estimate_usage,
)
from appliance.providers.transport import UpstreamRequest, UpstreamResponse, UpstreamStatus
from appliance.types import FinishReason, Generation, GenerationRequest, Usage

CHAT_PATH = "/chat/completions"
#: OpenAI's newer name; its reasoning models refuse ``max_tokens``.
MAX_TOKENS_FIELD = "max_completion_tokens"


def build_request(request: GenerationRequest, model: str, *, stream: bool,
                  max_tokens_field: str = MAX_TOKENS_FIELD) -> dict[str, Any]:
    """The JSON body of ``POST /chat/completions``."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in chat_messages(request)],
    }
    s = request.sampling
    if s.max_tokens is not None:
        body[max_tokens_field] = s.max_tokens
    for key, value in (("temperature", s.temperature), ("top_p", s.top_p), ("seed", s.seed),
                       ("presence_penalty", s.presence_penalty),
                       ("frequency_penalty", s.frequency_penalty)):
        if value is not None:
            body[key] = value
    if s.stop:
        body["stop"] = list(s.stop)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def finish_reason(value: str | None) -> FinishReason:
    """``length`` is the only reason a client must act on; content_filter and tool calls end
    the answer like ``stop`` (the internal type has no others)."""
    return "length" if value == "length" else "stop"


def parse_usage(raw: Any) -> Usage:
    return Usage(int(raw["prompt_tokens"]), int(raw["completion_tokens"]))


def parse_response(body: Any, model: str, fallback_usage: Usage | None = None) -> Generation:
    """A Chat Completion object; ``fallback_usage`` stands in when ``usage`` is missing
    (servers that omit it), otherwise a missing ``usage`` is a malformed body."""
    choice = body["choices"][0]
    text = choice["message"].get("content") or ""
    raw_usage = body.get("usage")
    if raw_usage:
        usage = parse_usage(raw_usage)
    elif fallback_usage is not None:
        usage = fallback_usage
    else:
        raise KeyError("usage")
    if not isinstance(text, str):
        raise TypeError("content")
    return Generation(text, finish_reason(choice.get("finish_reason")), usage, model)


def parse_stream_event(data: str, state: StreamState) -> str | None:
    """One chunk: text from ``choices[0].delta.content``; the final chunk (empty choices)
    carries usage; ``[DONE]`` ends the stream; ``{"error": ...}`` is an error event."""
    if data == "[DONE]":
        state.done = True
        return None
    chunk = decode_json(data)
    if "error" in chunk:
        raise UpstreamStatus(UpstreamResponse(500, {}, data.encode()))
    text = ""
    for choice in chunk.get("choices") or ():
        if choice.get("index", 0) != 0:
            continue
        piece = (choice.get("delta") or {}).get("content")
        if piece:
            text += piece
        if choice.get("finish_reason"):
            state.finish_reason = finish_reason(choice["finish_reason"])
    if text:
        state.add_text(text)
    if chunk.get("usage"):
        usage = parse_usage(chunk["usage"])
        state.report(usage.prompt_tokens, usage.completion_tokens)
    return text or None


def map_error(provider: str, status: int, headers: Mapping[str, str], body: bytes
              ) -> ApplianceError:
    """``{"error": {"message", "type", "param", "code"}}``; only type and code are read."""
    kind = code = ""
    try:
        error = decode_json(body)["error"]
        kind, code = str(error.get("type") or ""), str(error.get("code") or "")
    except Exception:  # noqa: BLE001 - any unreadable body is just an unknown error
        pass
    return error_for_status(provider, status, headers, code or kind,
                            context_length=code == "context_length_exceeded")


class OpenAIProvider(HTTPProvider):
    """api.openai.com, or any endpoint that is OpenAI itself behind another URL."""

    default_base_url = "https://api.openai.com/v1"
    max_tokens_field = MAX_TOKENS_FIELD
    #: Missing usage is a malformed body here; compatible servers relax this.
    usage_optional = False

    def auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.secret.reveal()}"} if self.secret else {}

    def upstream_model(self, model: str) -> str:
        return model

    def request_target(self, model: str) -> tuple[str, dict[str, str]]:
        """Path and query for a chat completion."""
        return CHAT_PATH, {}

    def build_request(self, request: GenerationRequest, stream: bool) -> UpstreamRequest:
        path, params = self.request_target(request.model)
        body = build_request(request, self.upstream_model(request.model), stream=stream,
                             max_tokens_field=self.max_tokens_field)
        return UpstreamRequest("POST", path, body, params)

    def parse_response(self, body: Any, request: GenerationRequest) -> Generation:
        fallback = None
        if self.usage_optional:
            fallback = estimate_usage(request)
            text = body["choices"][0]["message"].get("content") or ""
            fallback.completion_tokens = (len(text) + 3) // 4
        return parse_response(body, request.model, fallback)

    def parse_stream_event(self, data: str, state: StreamState) -> str | None:
        return parse_stream_event(data, state)

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes
                  ) -> ApplianceError:
        return map_error(self.name, status, headers, body)
