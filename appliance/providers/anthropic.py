"""Anthropic's Messages API (zone ``cloud``).

Differences from OpenAI that the translation absorbs: system messages become the top-level
``system`` string; ``max_tokens`` is required (we send ``DEFAULT_MAX_TOKENS`` when the client
gave none; the pipeline normally fills it from its limits); stop reasons ``end_turn`` and
``stop_sequence`` mean stop and ``max_tokens`` means length; usage is ``input_tokens`` /
``output_tokens``. Streams are typed events: ``message_start`` (input tokens),
``content_block_delta`` (text), ``message_delta`` (stop reason, output tokens so far),
``message_stop``, and ``error`` mid-stream. HTTP 529 means overloaded.

Anthropic has no ``seed`` and no presence/frequency penalties: asking for them is a 400 that
names the field rather than a silent change of meaning.
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
)
from appliance.providers.transport import UpstreamRequest, UpstreamResponse, UpstreamStatus
from appliance.types import FinishReason, Generation, GenerationRequest, Usage

API_VERSION = "2023-06-01"
MESSAGES_PATH = "/v1/messages"
DEFAULT_MAX_TOKENS = 4096

#: Error ``type`` values of mid-stream error events, as the HTTP status they stand for.
_EVENT_STATUS = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500,
                 "invalid_request_error": 400, "authentication_error": 401,
                 "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                 "timeout_error": 504}


def build_request(request: GenerationRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The JSON body of ``POST /v1/messages``."""
    system = [m.content for m in chat_messages(request) if m.role == "system"]
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.sampling.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": [{"role": m.role, "content": m.content}
                     for m in chat_messages(request) if m.role != "system"],
    }
    if system:
        body["system"] = "\n\n".join(system)
    s = request.sampling
    if s.temperature is not None:
        body["temperature"] = s.temperature
    if s.top_p is not None:
        body["top_p"] = s.top_p
    if s.stop:
        body["stop_sequences"] = list(s.stop)
    if stream:
        body["stream"] = True
    return body


def finish_reason(value: str | None) -> FinishReason:
    return "length" if value == "max_tokens" else "stop"


def parse_response(body: Any, model: str) -> Generation:
    if body.get("type") != "message":
        raise ValueError("not a message")
    text = "".join(block["text"] for block in body["content"] if block.get("type") == "text")
    usage = Usage(int(body["usage"]["input_tokens"]), int(body["usage"]["output_tokens"]))
    return Generation(text, finish_reason(body.get("stop_reason")), usage, model)


def parse_stream_event(data: str, state: StreamState) -> str | None:
    event = decode_json(data)
    kind = event["type"]
    if kind == "content_block_delta":
        delta = event["delta"]
        if delta.get("type") == "text_delta" and delta.get("text"):
            state.add_text(delta["text"])
            return str(delta["text"])
    elif kind == "message_start":
        usage = event["message"]["usage"]
        state.usage.prompt_tokens = int(usage["input_tokens"])
    elif kind == "message_delta":
        if event["delta"].get("stop_reason"):
            state.finish_reason = finish_reason(event["delta"]["stop_reason"])
        if "output_tokens" in (event.get("usage") or {}):
            state.report(None, int(event["usage"]["output_tokens"]))
    elif kind == "message_stop":
        state.done = True
    elif kind == "error":
        status = _EVENT_STATUS.get(str(event["error"].get("type")), 500)
        raise UpstreamStatus(UpstreamResponse(status, {}, data.encode()))
    return None


def map_error(provider: str, status: int, headers: Mapping[str, str], body: bytes
              ) -> ApplianceError:
    """``{"type": "error", "error": {"type", "message"}}``; only the type is read."""
    kind = message = ""
    try:
        error = decode_json(body)["error"]
        kind, message = str(error.get("type") or ""), str(error.get("message") or "")
    except Exception:  # noqa: BLE001 - any unreadable body is just an unknown error
        pass
    too_long = status == 400 and "prompt is too long" in message
    return error_for_status(provider, status, headers, kind, context_length=too_long)


class AnthropicProvider(HTTPProvider):
    default_base_url = "https://api.anthropic.com"
    unsupported = frozenset({"seed", "presence_penalty", "frequency_penalty"})

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self.secret:
            headers["x-api-key"] = self.secret.reveal()
        return headers

    def build_request(self, request: GenerationRequest, stream: bool) -> UpstreamRequest:
        return UpstreamRequest("POST", MESSAGES_PATH,
                               build_request(request, request.model, stream=stream))

    def parse_response(self, body: Any, request: GenerationRequest) -> Generation:
        return parse_response(body, request.model)

    def parse_stream_event(self, data: str, state: StreamState) -> str | None:
        return parse_stream_event(data, state)

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes
                  ) -> ApplianceError:
        return map_error(self.name, status, headers, body)
