"""Response shapes: OpenAI JSON bodies, errors, and server-sent event streams."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from appliance.errors import ApplianceError, internal_error
from appliance.types import Delta, Generation, GenerationRequest

_encode = msgspec.json.Encoder().encode
_MAX_PENDING = 256  # events a stream gathers while a send waits on a slow client, at most
log = logging.getLogger("appliance.http")
Handler = Callable[[Request], Awaitable[Response]]


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encode(content)


def error_response(exc: ApplianceError) -> JSONResponse:
    return JSONResponse(exc.to_body(), status_code=exc.status, headers=exc.headers())


def openai_errors(handler: Handler) -> Handler:
    """Map every failure of a handler onto OpenAI's error format."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ApplianceError as exc:
            return error_response(exc)
        except Exception:
            request_id = request.scope["state"]["request_id"]
            log.exception("unhandled error in request %s", request_id)
            return error_response(internal_error(request_id))

    return wrapped


def generation_body(request: GenerationRequest, result: Generation, response_id: str,
                    created: int) -> dict[str, Any]:
    if request.is_chat:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": result.text, "refusal": None},
            "logprobs": None, "finish_reason": result.finish_reason}
        kind = "chat.completion"
    else:
        choice = {"index": 0, "text": result.text, "logprobs": None,
                  "finish_reason": result.finish_reason}
        kind = "text_completion"
    return {"id": response_id, "object": kind, "created": created, "model": result.model,
            "system_fingerprint": None, "choices": [choice], "usage": result.usage.to_dict()}


async def sse_events(request: GenerationRequest, model: str, first: Delta,
                     rest: AsyncIterator[Delta], response_id: str) -> AsyncIterator[bytes]:
    """OpenAI's stream: a chunk per delta, a last chunk with finish_reason, an optional usage
    chunk (``stream_options.include_usage``), then ``[DONE]``. An error after the first byte
    becomes an ``error`` event, which the official clients raise as an exception."""
    created = int(time.time())
    chat = request.is_chat
    usage_field: dict[str, Any] = {"usage": None} if request.include_usage else {}

    def chunk(text: str | None, finish: str | None, role: bool = False) -> bytes:
        if chat:
            delta: dict[str, Any] = {"role": "assistant"} if role else {}
            if text is not None:
                delta["content"] = text
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None,
                                      "finish_reason": finish}
            body: dict[str, Any] = {
                "id": response_id, "object": "chat.completion.chunk", "created": created,
                "model": model, "system_fingerprint": None, "choices": [choice],
                **usage_field}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
            body = {"id": response_id, "object": "text_completion", "created": created,
                    "model": model, "choices": [choice], **usage_field}
        return b"data: " + _encode(body) + b"\n\n"

    if chat:
        yield chunk("", None, role=True)
    delta = first
    try:
        while True:
            if delta.text:
                yield chunk(delta.text, None)
            if delta.finish_reason is not None:
                yield chunk(None if chat else "", delta.finish_reason)
                # Run the stream to its end: the pipeline settles and audits there, before the
                # client is told the answer is complete.
                async for _ in rest:
                    pass
                if request.include_usage and delta.usage is not None:
                    body: dict[str, Any] = {
                        "id": response_id,
                        "object": "chat.completion.chunk" if chat else "text_completion",
                        "created": created, "model": model, "choices": [],
                        "usage": delta.usage.to_dict()}
                    yield b"data: " + _encode(body) + b"\n\n"
                break
            delta = await rest.__anext__()
    except ApplianceError as exc:
        yield b"data: " + _encode(exc.to_body()) + b"\n\n"
    finally:
        # Closing early (client gone) closes the pipeline's stream too, so it settles and
        # audits what was actually generated right away, not whenever it is collected.
        await rest.aclose()  # type: ignore[attr-defined]
    yield b"data: [DONE]\n\n"


class EventStreamResponse:
    """Sends server-sent events as they are produced, never holding one back: events that are
    ready together (several tokens from one upstream read) go out in one message, one write.
    When the client goes away the producer is closed at once, which stops generation upstream.
    """

    def __init__(self, events: AsyncIterator[bytes], headers: Mapping[str, str]) -> None:
        self.events = events
        self.headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"), *self.headers]})
        # The producer runs the events into ``pending``; this task sends whatever has gathered
        # each time it runs, which is as soon as the producer has to wait for the next event.
        pending: list[bytes] = []
        ready = asyncio.Event()
        room = asyncio.Event()

        async def produce() -> None:
            try:
                async for event in self.events:
                    pending.append(event)
                    ready.set()
                    if len(pending) >= _MAX_PENDING:  # a slow reader: let it catch up
                        room.clear()
                        await room.wait()
            finally:
                await self.events.aclose()  # type: ignore[attr-defined]

        async def cancel_on_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            producer.cancel()

        producer = asyncio.create_task(produce())
        producer.add_done_callback(lambda _: ready.set())
        watcher = asyncio.create_task(cancel_on_disconnect())
        try:
            while True:
                await ready.wait()
                ready.clear()
                if producer.done():
                    break
                body = b"".join(pending)
                pending.clear()
                room.set()
                await send({"type": "http.response.body", "body": body, "more_body": True})
            if producer.cancelled():
                return  # the client left
            body = b"".join(pending)
            if producer.exception() is not None:
                # Not a clean end: send what came before the failure, then raise it so the
                # server cuts the connection and the client sees an incomplete stream.
                if body:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                producer.result()
            await send({"type": "http.response.body", "body": body, "more_body": False})
        except OSError:
            pass  # the client is gone; cancelling the producer below stops the work
        finally:
            watcher.cancel()
            if not producer.done():
                producer.cancel()
                await asyncio.wait([producer])
