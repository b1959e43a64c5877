"""The HTTP surface: thin handlers over the pipeline, and the middleware stack.

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

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive

from appliance.errors import ApplianceError, MethodNotAllowed, NotFound, ServiceUnavailable
from appliance.http.admin import admin_routes, runtime_of
from appliance.limits.routes import limits_routes
from appliance.audit.routes import audit_routes
from appliance.http.middleware import AccessLogMiddleware, BodyLimitMiddleware, RequestIdMiddleware
from appliance.http.responses import (EventStreamResponse, JSONResponse, error_response,
                                      generation_body, openai_errors, sse_events)
from appliance.pipeline import RequestContext
from appliance.types import Delta, Generation, GenerationRequest

if TYPE_CHECKING:
    from appliance.runtime import Runtime

T = TypeVar("T")


def _context(request: Request) -> RequestContext:
    return RequestContext(request_id=request.scope["state"]["request_id"],
                          declared=request.headers.get("x-data-classification"))


class ClientDisconnected(Exception):
    """The client left before its answer was ready."""


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run ``work`` but cancel it as soon as the client disconnects, so a client that timed
    out (or was killed) does not keep a model context generating for nobody."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watch.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raise ClientDisconnected


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
        gen_request, result, first = await _unless_disconnected(request, answer())
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


def build_app(runtime: Runtime, lifespan: Any) -> Starlette:
    """The application with its middleware stack, outermost first."""
    server = runtime.config.server
    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *admin_routes(),
        *limits_routes(),
        *audit_routes(),
    ]
    middleware = [
        Middleware(AccessLogMiddleware, enabled=server.access_log),
        Middleware(RequestIdMiddleware),
        Middleware(BodyLimitMiddleware, max_bytes=server.max_body_bytes),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={HTTPException: http_exception})
    app.state.runtime = runtime
    return app
