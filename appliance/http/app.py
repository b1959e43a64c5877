"""The HTTP surface: thin handlers over the pipeline, and the ASGI application around them.

Each handler reads the body, calls one pipeline entry point and shapes the result. Every error
becomes OpenAI's error body; an unexpected exception becomes a generic 500 naming only the
request id, while the trace goes to the server log.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send

from appliance.errors import ApplianceError, MethodNotAllowed, NotFound, ServiceUnavailable
from appliance.http.admin import admin_routes, runtime_of
from appliance.limits.routes import limits_routes
from appliance.audit.routes import audit_routes
from appliance.http.policy_routes import policy_routes
from appliance.http.providers_routes import providers_routes
from appliance.http.middleware import TransportMiddleware
from appliance.http.responses import (EventStreamResponse, Handler, JSONResponse,
                                      error_response, generation_body, openai_errors,
                                      sse_events)
from appliance.pipeline import RequestContext
from appliance.types import Delta, Generation, GenerationRequest
from sync.routes import sync_routes

if TYPE_CHECKING:
    from appliance.runtime import Runtime

T = TypeVar("T")


def _context(request: Request) -> RequestContext:
    headers = request.headers
    return RequestContext(request_id=request.scope["state"]["request_id"],
                          declared=headers.get("x-data-classification"),
                          latency_header=headers.get("x-appliance-max-latency-ms"))


class ClientDisconnected(Exception):
    """The client left before its answer was ready."""


async def _unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Await ``work``, but cancel it as soon as the client disconnects, so a client that timed
    out (or was killed) does not keep a model context generating for nobody. The work runs in
    the request's own task; one watcher task waits for the disconnect. (Stepping
    ``receive()`` by hand instead of in a task saved about 5 us a request: not worth
    depending on how asyncio drives coroutines.)"""
    task = asyncio.current_task()
    assert task is not None
    left = False

    async def watch() -> None:
        nonlocal left
        while (await receive())["type"] != "http.disconnect":
            pass
        left = True
        task.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        # Our own cancellation becomes ClientDisconnected; anyone else's goes on up.
        if left and task.uncancel() == 0:
            raise ClientDisconnected from None
        raise
    finally:
        watcher.cancel()


async def _generation(request: Request, endpoint: str) -> Response:
    runtime = runtime_of(request)
    ctx = _context(request)
    body = await request.body()

    async def answer() -> tuple[GenerationRequest, Generation | AsyncIterator[Delta],
                                Delta | None]:
        gen_request, result = await runtime.pipeline.run_generation(
            ctx, request.headers.get("authorization"), body, endpoint)
        if isinstance(result, Generation):
            return gen_request, result, None
        # Wait for the first delta before sending a status: errors that happen before any
        # output (queue full, context too long) still get their own status code.
        try:
            return gen_request, result, await result.__anext__()
        except BaseException:
            await result.aclose()  # type: ignore[attr-defined]
            raise

    try:
        gen_request, result, first = await _unless_disconnected(request.receive, answer())
    except ClientDisconnected:
        return Response(status_code=499)  # nginx's "client closed request", for the access log
    prefix = "chatcmpl-" if endpoint == "chat" else "cmpl-"
    response_id = prefix + secrets.token_hex(12)
    headers = runtime.pipeline.respond(ctx)
    if isinstance(result, Generation):
        return JSONResponse(generation_body(gen_request, result, response_id, int(time.time())),
                            headers=headers)
    assert ctx.route is not None and first is not None
    events = sse_events(gen_request, ctx.route.model.id, first, result, response_id)
    return EventStreamResponse(events, headers)  # type: ignore[return-value]


@openai_errors
async def chat_completions(request: Request) -> Response:
    return await _generation(request, "chat")


@openai_errors
async def completions(request: Request) -> Response:
    return await _generation(request, "completion")


@openai_errors
async def embeddings(request: Request) -> Response:
    runtime = runtime_of(request)
    ctx = _context(request)
    body = await request.body()
    emb_request, result = await runtime.pipeline.run_embeddings(
        ctx, request.headers.get("authorization"), body)
    data = [{"object": "embedding", "index": i, "embedding": v}
            for i, v in enumerate(result.vectors)]
    return JSONResponse({"object": "list", "data": data, "model": result.model,
                         "usage": {"prompt_tokens": result.usage.prompt_tokens,
                                   "total_tokens": result.usage.prompt_tokens}},
                        headers=runtime.pipeline.respond(ctx))


@openai_errors
async def list_models(request: Request) -> Response:
    runtime = runtime_of(request)
    key = runtime.pipeline.authenticate(_context(request), request.headers.get("authorization"))
    created = int(runtime.started_at)
    data = [{"id": m.id, "object": "model", "created": created, "owned_by": m.owned_by}
            for m in runtime.router.visible_models(key)]
    return JSONResponse({"object": "list", "data": data})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@openai_errors
async def readyz(request: Request) -> Response:
    runtime = runtime_of(request)
    checks = runtime.readiness()
    body: dict[str, Any] = {"status": "ready" if all(checks.values()) else "not_ready",
                            "checks": checks, "pool": runtime.pool_stats()}
    return JSONResponse(body, status_code=200 if body["status"] == "ready" else 503)


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error: ApplianceError = MethodNotAllowed(f"Method {request.method} is not allowed on "
                                                 f"{request.url.path}.")
    elif exc.status_code == 404:
        error = NotFound(f"Unknown request URL: {request.method} {request.url.path}.")
    else:
        error = ServiceUnavailable(str(exc.detail))
        error.status = exc.status_code
    return error_response(error)


class Gateway:
    """The ASGI application: starlette's router under ``TransportMiddleware``.

    Starlette's application class would add its ServerErrorMiddleware and ExceptionMiddleware,
    two more wrappers around every message sent; here every handler maps its own errors
    (``openai_errors``) and the transport middleware maps what escapes, so only the router's
    404 and 405 are left to map, in OpenAI's format. The router also runs the lifespan. The
    OpenAI POST routes (``hot``) skip the router: one dict lookup instead of its matching and
    its per-request wrappers, which cost more than the handler's own shaping.
    """

    def __init__(self, runtime: Runtime, routes: list[BaseRoute], lifespan: Any,
                 hot: dict[str, Handler] | None = None) -> None:
        server = runtime.config.server
        self.state = State()  # ``request.app.state.runtime`` in handlers
        self.state.runtime = runtime
        self.router = Router(routes, lifespan=lifespan)
        #: The OpenAI POST routes by path, called without the router's matching and wrappers
        #: (they are also in ``routes``, where every other method gets its 405).
        self.hot = hot or {}
        self.stack = TransportMiddleware(self._route, max_body_bytes=server.max_body_bytes,
                                         access_log=server.access_log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self  # also tells the router to raise 404 and 405 rather than answer
        await self.stack(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.hot.get(scope["path"]) if scope.get("method") == "POST" else None
        if handler is not None:
            pipeline = self.state.runtime.pipeline
            pipeline.in_flight += 1
            try:
                response = await handler(Request(scope, receive, send))
                await response(scope, receive, send)
            finally:
                pipeline.in_flight -= 1
            return
        try:
            await self.router(scope, receive, send)
        except HTTPException as exc:
            response = await http_exception(Request(scope, receive), exc)
            await response(scope, receive, send)


def build_app(runtime: Runtime, lifespan: Any) -> Gateway:
    """The application: the routes, under the transport middleware."""
    hot: dict[str, Handler] = {"/v1/chat/completions": chat_completions,
                               "/v1/completions": completions, "/v1/embeddings": embeddings}
    routes: list[BaseRoute] = [
        *(Route(path, handler, methods=["POST"]) for path, handler in hot.items()),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *admin_routes(),
        *limits_routes(),
        *audit_routes(),
        *policy_routes(),
        *providers_routes(),
        *sync_routes(),
    ]
    return Gateway(runtime, routes, lifespan, hot)
