"""Google Gemini's ``generateContent`` and ``streamGenerateContent?alt=sse`` (zone ``cloud``).

Differences the translation absorbs: messages are ``contents`` of ``parts`` with the role
``model`` for the assistant; system messages become ``systemInstruction``; sampling lives in
``generationConfig``; usage is ``usageMetadata`` (thinking tokens are billed as output, so
they count as completion tokens); ``MAX_TOKENS`` means length and every other finish reason
(``STOP``, ``SAFETY``, ...) means stop. Each stream chunk is a whole response object whose
``usageMetadata`` is cumulative, and the stream ends at end of body (no terminator).

The key travels in the ``x-goog-api-key`` header, never in the URL, so it cannot reach an
access log. Gemini answers a bad key with 400 ``API_KEY_INVALID``, mapped like a 401.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

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

API_PREFIX = "/v1beta/models/"


def build_request(request: GenerationRequest) -> dict[str, Any]:
    """The JSON body of ``generateContent`` (the same for the streaming call)."""
    messages = chat_messages(request)
    body: dict[str, Any] = {
        "contents": [{"role": "model" if m.role == "assistant" else "user",
                      "parts": [{"text": m.content}]}
                     for m in messages if m.role != "system"],
    }
    system = [m.content for m in messages if m.role == "system"]
    if system:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    s = request.sampling
    config: dict[str, Any] = {}
    for key, value in (("maxOutputTokens", s.max_tokens), ("temperature", s.temperature),
                       ("topP", s.top_p), ("seed", s.seed),
                       ("presencePenalty", s.presence_penalty),
                       ("frequencyPenalty", s.frequency_penalty)):
        if value is not None:
            config[key] = value
    if s.stop:
        config["stopSequences"] = list(s.stop)
    if config:
        body["generationConfig"] = config
    return body


def finish_reason(value: str | None) -> FinishReason:
    return "length" if value == "MAX_TOKENS" else "stop"


def parse_usage(raw: Any) -> Usage:
    return Usage(int(raw.get("promptTokenCount", 0)),
                 int(raw.get("candidatesTokenCount", 0)) + int(raw.get("thoughtsTokenCount", 0)))


def _text(candidate: Any) -> str:
    parts = (candidate.get("content") or {}).get("parts") or ()
    return "".join(part.get("text", "") for part in parts if not part.get("thought"))


def parse_response(body: Any, model: str) -> Generation:
    candidates = body.get("candidates") or []
    # No candidate at all means the prompt itself was blocked: an empty answer.
    candidate = candidates[0] if candidates else {}
    usage = parse_usage(body["usageMetadata"])
    return Generation(_text(candidate), finish_reason(candidate.get("finishReason")), usage,
                      model)


def parse_stream_event(data: str, state: StreamState) -> str | None:
    chunk = decode_json(data)
    if "error" in chunk:
        raise UpstreamStatus(UpstreamResponse(int(chunk["error"].get("code") or 500), {},
                                              data.encode()))
    candidates = chunk.get("candidates") or []
    text = _text(candidates[0]) if candidates else ""
    if text:
        state.add_text(text)
    if candidates and candidates[0].get("finishReason"):
        state.finish_reason = finish_reason(candidates[0]["finishReason"])
    if chunk.get("usageMetadata"):
        usage = parse_usage(chunk["usageMetadata"])
        state.report(usage.prompt_tokens, usage.completion_tokens or None)
    return text or None


def _retry_delay(error: Any) -> float | None:
    for detail in error.get("details") or ():
        delay = str(detail.get("retryDelay") or "")
        if delay.endswith("s"):
            return float(delay[:-1])
    return None


def map_error(provider: str, status: int, headers: Mapping[str, str], body: bytes
              ) -> ApplianceError:
    """``{"error": {"code", "message", "status", "details"}}``; status, reasons and the
    retry delay are read, never the message."""
    kind, reasons, delay = "", set(), None
    try:
        error = decode_json(body)["error"]
        kind = str(error.get("status") or "")
        reasons = {str(d.get("reason")) for d in error.get("details") or () if d.get("reason")}
        delay = _retry_delay(error)
    except Exception:  # noqa: BLE001 - any unreadable body is just an unknown error
        pass
    return error_for_status(provider, status, headers, kind,
                            auth_failed="API_KEY_INVALID" in reasons, hint_retry=delay)


class GeminiProvider(HTTPProvider):
    default_base_url = "https://generativelanguage.googleapis.com"

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.secret.reveal()} if self.secret else {}

    def build_request(self, request: GenerationRequest, stream: bool) -> UpstreamRequest:
        model = quote(request.model, safe="")
        if stream:
            return UpstreamRequest("POST", f"{API_PREFIX}{model}:streamGenerateContent",
                                   build_request(request), {"alt": "sse"})
        return UpstreamRequest("POST", f"{API_PREFIX}{model}:generateContent",
                               build_request(request))

    def parse_response(self, body: Any, request: GenerationRequest) -> Generation:
        return parse_response(body, request.model)

    def parse_stream_event(self, data: str, state: StreamState) -> str | None:
        return parse_stream_event(data, state)

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes
                  ) -> ApplianceError:
        return map_error(self.name, status, headers, body)
