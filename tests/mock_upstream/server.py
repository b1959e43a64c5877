"""A mock upstream process speaking each cloud provider's real wire format.

Cloud providers cannot be reached here, so tests and benchmarks run this instead: OpenAI chat
(``/v1/chat/completions``, plain and SSE with a final usage chunk), Azure OpenAI
(``/openai/deployments/{d}/chat/completions?api-version=``, ``api-key`` header), Anthropic
Messages (``/v1/messages``, plain and typed SSE events) and Gemini
(``/v1beta/models/{m}:generateContent`` and ``:streamGenerateContent?alt=sse``).

Replies are deterministic: "This is a mock reply to N words." (N counts the last user
message), one word per stream chunk, cut to ``max_tokens`` words with the length finish
reason; prompt tokens are the words of all messages. ``mock:echo`` replies with the contents
of all messages instead (joined by newlines, streamed in chunks of ``ECHO_CHUNK`` characters,
so that anything longer is split across chunks). Each API checks its own auth header
against $MOCK_UPSTREAM_KEY and answers a wrong key as the real service does (echoing the key,
so tests can prove the appliance does not pass it on).

Failures are injected by ``mock:<what>`` in the last user message or an ``x-mock`` header:
401 403 404 429 500 503 529, ``slow_first_byte``, ``slow_chunks``, ``malformed``, ``cut``
(a stream cut mid-way), ``no_usage``; ``mock:500@gpt-4o-mini`` fails only requests for that
model (so an alias's next candidate on the same mock answers; the first directive for the
model counts). ``GET /_stats`` counts requests
per path (``?by=model``: per model), ``GET /_requests`` returns the last request bodies
received (``path``, ``model``, ``body``), and ``POST /_reset`` clears them. aiohttp, no access log and precomputed bodies keep it cheap.

Run: ``python -m tests.mock_upstream.server [--port 0]``; it prints
``mock-upstream: listening on http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
from collections import Counter, deque
from typing import Any

from aiohttp import web

KEY = os.environ.get("MOCK_UPSTREAM_KEY", "mock-upstream-key")
SLOW_SECONDS = float(os.environ.get("MOCK_UPSTREAM_SLOW_SECONDS", "3"))
_DIRECTIVE = re.compile(r"mock:([a-z_0-9]+)(?:@([A-Za-z0-9._-]+))?")
STATS: Counter[str] = Counter()
MODEL_STATS: Counter[str] = Counter()
RECEIVED: deque[dict[str, Any]] = deque(maxlen=200)
#: Characters per stream chunk of an echo.
ECHO_CHUNK = 3

Messages = list[tuple[str, str]]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(),
                        content_type="application/json", headers=headers)


def reply_words(messages: Messages, max_tokens: int | None) -> tuple[list[str], str, int]:
    """Words of the reply, ``stop``/``length``, and the prompt's word count."""
    last_user = next((text for role, text in reversed(messages) if role == "user"), "")
    words = ["This", "is", "a", "mock", "reply", "to", str(len(last_user.split())), "words."]
    finish = "stop"
    if max_tokens is not None and max_tokens < len(words):
        words, finish = words[:max_tokens], "length"
    return words, finish, sum(len(text.split()) for _, text in messages)


class Dialect:
    """One provider's wire format; subclasses fill in the shapes."""

    def authorized(self, request: web.Request) -> bool:
        raise NotImplementedError

    def presented_key(self, request: web.Request) -> str:
        raise NotImplementedError

    def parse(self, body: Any) -> tuple[Messages, int | None]:
        raise NotImplementedError

    def error(self, status: int, key: str = "") -> web.Response:
        raise NotImplementedError

    def body(self, model: str, text: str, finish: str, usage: tuple[int, int],
             with_usage: bool) -> Any:
        raise NotImplementedError

    def events(self, model: str, pieces: list[str], finish: str, usage: tuple[int, int],
               with_usage: bool) -> list[bytes]:
        raise NotImplementedError

    retry_header = True


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n".encode()


class OpenAIDialect(Dialect):
    finish_names = {"stop": "stop", "length": "length"}

    def presented_key(self, request: web.Request) -> str:
        return request.headers.get("authorization", "").removeprefix("Bearer ")

    def authorized(self, request: web.Request) -> bool:
        return self.presented_key(request) == KEY

    def parse(self, body: Any) -> tuple[Messages, int | None]:
        messages = [(m["role"], m["content"]) for m in body["messages"]]
        return messages, body.get("max_completion_tokens", body.get("max_tokens"))

    def error(self, status: int, key: str = "") -> web.Response:
        kinds = {401: ("invalid_request_error", "invalid_api_key",
                       f"Incorrect API key provided: {key}."),
                 403: ("permission_error", "permission_denied", "Not allowed."),
                 404: ("invalid_request_error", "model_not_found", "No such model."),
                 429: ("rate_limit_error", "rate_limit_exceeded", "Slow down."),
                 529: ("server_error", None, "Overloaded.")}
        kind, code, message = kinds.get(status, ("server_error", None, "Server error."))
        headers = {"retry-after": "7"} if status == 429 else None
        return _json(status, {"error": {"message": message, "type": kind, "param": None,
                                        "code": code}}, headers)

    def body(self, model: str, text: str, finish: str, usage: tuple[int, int],
             with_usage: bool) -> Any:
        body: dict[str, Any] = {
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish}]}
        if with_usage:
            body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                             "total_tokens": sum(usage)}
        return body

    def events(self, model: str, pieces: list[str], finish: str, usage: tuple[int, int],
               with_usage: bool) -> list[bytes]:
        base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0,
                "model": model}
        out = [sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant",
                                                               "content": ""},
                                         "finish_reason": None}]})]
        for piece in pieces:
            out.append(sse({**base, "choices": [{"index": 0, "delta": {"content": piece},
                                                 "finish_reason": None}]}))
        out.append(sse({**base, "choices": [{"index": 0, "delta": {},
                                             "finish_reason": finish}]}))
        if with_usage:
            out.append(sse({**base, "choices": [], "usage": {
                "prompt_tokens": usage[0], "completion_tokens": usage[1],
                "total_tokens": sum(usage)}}))
        out.append(sse("[DONE]"))
        return out


class AzureDialect(OpenAIDialect):
    def presented_key(self, request: web.Request) -> str:
        return request.headers.get("api-key", "")

    def error(self, status: int, key: str = "") -> web.Response:
        if status == 401:
            return _json(401, {"error": {"code": "401", "message": "Access denied due to "
                                         "invalid subscription key or wrong API endpoint."}})
        return super().error(status, key)


class AnthropicDialect(Dialect):
    def presented_key(self, request: web.Request) -> str:
        return request.headers.get("x-api-key", "")

    def authorized(self, request: web.Request) -> bool:
        return (self.presented_key(request) == KEY
                and request.headers.get("anthropic-version") == "2023-06-01")

    def parse(self, body: Any) -> tuple[Messages, int | None]:
        if "max_tokens" not in body:
            raise KeyError("max_tokens")
        messages = [("system", body["system"])] if body.get("system") else []
        messages += [(m["role"], m["content"]) for m in body["messages"]]
        return messages, body["max_tokens"]

    def error(self, status: int, key: str = "") -> web.Response:
        kinds = {400: "invalid_request_error", 401: "authentication_error",
                 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error",
                 500: "api_error", 503: "api_error", 529: "overloaded_error"}
        headers = {"retry-after": "7"} if status == 429 else None
        return _json(status, {"type": "error", "error": {
            "type": kinds.get(status, "api_error"), "message": f"mock error ({key})"}}, headers)

    def body(self, model: str, text: str, finish: str, usage: tuple[int, int],
             with_usage: bool) -> Any:
        return {"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "max_tokens" if finish == "length" else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": usage[0], "output_tokens": usage[1]}}

    def events(self, model: str, pieces: list[str], finish: str, usage: tuple[int, int],
               with_usage: bool) -> list[bytes]:
        out = [sse({"type": "message_start", "message": {
                   "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                   "content": [], "stop_reason": None,
                   "usage": {"input_tokens": usage[0], "output_tokens": 1}}}, "message_start"),
               sse({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}, "content_block_start"),
               sse({"type": "ping"}, "ping")]
        for piece in pieces:
            out.append(sse({"type": "content_block_delta", "index": 0,
                            "delta": {"type": "text_delta", "text": piece}},
                           "content_block_delta"))
        out.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        out.append(sse({"type": "message_delta", "delta": {
            "stop_reason": "max_tokens" if finish == "length" else "end_turn",
            "stop_sequence": None}, "usage": {"output_tokens": usage[1]}}, "message_delta"))
        out.append(sse({"type": "message_stop"}, "message_stop"))
        return out


class GeminiDialect(Dialect):
    retry_header = False  # Gemini says when to retry in the body (RetryInfo)

    def presented_key(self, request: web.Request) -> str:
        return request.headers.get("x-goog-api-key", "")

    def authorized(self, request: web.Request) -> bool:
        return self.presented_key(request) == KEY

    def parse(self, body: Any) -> tuple[Messages, int | None]:
        messages: Messages = []
        for part in (body.get("systemInstruction") or {}).get("parts", []):
            messages.append(("system", part["text"]))
        for content in body["contents"]:
            role = "assistant" if content["role"] == "model" else "user"
            messages.append((role, "".join(p["text"] for p in content["parts"])))
        return messages, (body.get("generationConfig") or {}).get("maxOutputTokens")

    def error(self, status: int, key: str = "") -> web.Response:
        names = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
        details: list[Any] = []
        if status == 401:  # Gemini answers a bad key with 400 API_KEY_INVALID
            status = 400
            details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]
        if status == 429:
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": "7s"}]
        return _json(status, {"error": {"code": status, "message": f"API key not valid: {key}",
                                        "status": names.get(status, "INTERNAL"),
                                        "details": details}})

    def _response(self, text: str, finish: str | None, usage: tuple[int, int]) -> Any:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]},
                                     "index": 0}
        if finish:
            candidate["finishReason"] = "MAX_TOKENS" if finish == "length" else "STOP"
        return {"candidates": [candidate], "usageMetadata": {
            "promptTokenCount": usage[0], "candidatesTokenCount": usage[1],
            "totalTokenCount": sum(usage)}, "modelVersion": "mock"}

    def body(self, model: str, text: str, finish: str, usage: tuple[int, int],
             with_usage: bool) -> Any:
        return self._response(text, finish, usage)

    def events(self, model: str, pieces: list[str], finish: str, usage: tuple[int, int],
               with_usage: bool) -> list[bytes]:
        out = []
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            out.append(sse(self._response(piece, finish if last else None, (usage[0], i + 1))))
        return out


async def respond(request: web.Request, dialect: Dialect, model: str, stream: bool,
                  ) -> web.StreamResponse:
    STATS[request.path] += 1
    MODEL_STATS[model] += 1
    try:
        body = await request.json()
        RECEIVED.append({"path": request.path, "model": model, "body": body})
        messages, max_tokens = dialect.parse(body)
    except (ValueError, KeyError, TypeError):
        return dialect.error(400)
    last_user = next((text for role, text in reversed(messages) if role == "user"), "")
    # The first directive aimed at this model (or at none): "mock:500@a mock:echo" fails
    # requests for a and echoes the others.
    found = next((m for m in _DIRECTIVE.finditer(last_user)
                  if not m.group(2) or m.group(2) == model), None)
    what = request.headers.get("x-mock") or (found.group(1) if found else "")
    if not dialect.authorized(request):
        return dialect.error(401, dialect.presented_key(request))
    if what.isdigit():
        return dialect.error(int(what))
    if what == "slow_first_byte":
        await asyncio.sleep(SLOW_SECONDS)
    words, finish, prompt = reply_words(messages, max_tokens)
    pieces = [word + " " for word in words[:-1]] + words[-1:]
    if what == "echo":
        echo = "\n".join(text for _, text in messages)
        pieces, finish = [echo[i:i + ECHO_CHUNK] for i in range(0, len(echo), ECHO_CHUNK)], "stop"
    usage = (prompt, len(pieces))
    with_usage = what != "no_usage"
    if not stream:
        if what == "malformed":
            return web.Response(body=b'{"choices": [ {"mess', content_type="application/json")
        return _json(200, dialect.body(model, "".join(pieces), finish, usage, with_usage))
    response = web.StreamResponse(headers={"content-type": "text/event-stream",
                                           "cache-control": "no-cache"})
    await response.prepare(request)
    events = dialect.events(model, pieces, finish, usage, with_usage)
    if what == "malformed":
        events = [events[0], b"data: {not json\n\n"] + events[1:]
    for index, event in enumerate(events):
        if index == 2 and what == "cut" and request.transport is not None:
            request.transport.close()  # the connection dies mid-stream, no final chunk
            return response
        if index == 2 and what == "slow_chunks":
            await asyncio.sleep(SLOW_SECONDS)
        await response.write(event)
    await response.write_eof()
    return response


OPENAI, AZURE, ANTHROPIC, GEMINI = OpenAIDialect(), AzureDialect(), AnthropicDialect(), \
    GeminiDialect()


async def openai_chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    return await respond(request, OPENAI, body.get("model", ""), bool(body.get("stream")))


async def azure_chat(request: web.Request) -> web.StreamResponse:
    if not request.query.get("api-version"):
        STATS[request.path] += 1
        return _json(404, {"error": {"code": "404", "message": "Resource not found"}})
    body = await request.json()
    return await respond(request, AZURE, request.match_info["deployment"],
                         bool(body.get("stream")))


async def anthropic_messages(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    return await respond(request, ANTHROPIC, body.get("model", ""), bool(body.get("stream")))


async def gemini_generate(request: web.Request) -> web.StreamResponse:
    model, _, method = request.match_info["target"].partition(":")
    if method == "streamGenerateContent" and request.query.get("alt") == "sse":
        return await respond(request, GEMINI, model, True)
    if method == "generateContent":
        return await respond(request, GEMINI, model, False)
    STATS[request.path] += 1
    return GEMINI.error(404)


async def stats(request: web.Request) -> web.Response:
    return _json(200, dict(MODEL_STATS if request.query.get("by") == "model" else STATS))


async def received(request: web.Request) -> web.Response:
    return _json(200, list(RECEIVED))


async def reset(request: web.Request) -> web.Response:
    STATS.clear()
    MODEL_STATS.clear()
    RECEIVED.clear()
    return _json(200, {})


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", openai_chat)
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", azure_chat)
    app.router.add_post("/v1/messages", anthropic_messages)
    app.router.add_post("/v1beta/models/{target}", gemini_generate)
    app.router.add_get("/_stats", stats)
    app.router.add_get("/_requests", received)
    app.router.add_post("/_reset", reset)
    return app


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(make_app(), access_log=None, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"mock-upstream: listening on http://{host}:{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
