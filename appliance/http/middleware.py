"""Transport-level middleware, as one plain ASGI class.

Only cross-cutting transport concerns live here (request id, body size limit, access log,
the last-resort 500); request logic is in ``appliance.pipeline``. They share one class so
that every message of a response passes through one send wrapper, not one per concern: a
stream sends a message per batch of tokens. Nothing here buffers a response, so streamed
answers pass through token by token. Where it sits is fixed in ``appliance.http.app``.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appliance.errors import ApplianceError, PayloadTooLarge, internal_error
from appliance.http.responses import error_response

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
access_log = logging.getLogger("appliance.access")
log = logging.getLogger("appliance.http")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def _request_id(scope: Scope) -> str:
    """The client's ``x-request-id`` when it is well-formed, a new one otherwise."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return new_request_id()


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


class TransportMiddleware:
    """For every HTTP request:

    - an id (a well-formed ``x-request-id`` from the client is kept), in
      ``scope["state"]["request_id"]`` and on every response, errors and 413s included;
    - bodies over ``max_body_bytes`` refused: at once when Content-Length says so, otherwise
      as soon as the bytes received pass the limit (chunked uploads), before anything parses
      them;
    - an exception that escapes the application becomes OpenAI's error body (a generic 500
      naming only the request id; the trace goes to the log), or, once the response has
      started, is raised on so that the server cuts the connection rather than end it cleanly;
    - one access line: method, path, status, duration, request id. Never a body, a header
      value or a key.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, access_log: bool = True) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"Request body is larger than the limit of "
                               f"{self.max_body_bytes} bytes.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        raw_id = request_id.encode("ascii")
        status = 0
        received = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", raw_id)]
            await send(message)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise self._too_large()
            return message

        try:
            if _declared_length(scope) > self.max_body_bytes:
                await error_response(self._too_large())(scope, receive, send_with_id)
            else:
                await self.app(scope, limited_receive, send_with_id)
        except Exception as exc:
            if status:
                raise
            if not isinstance(exc, ApplianceError):
                log.exception("unhandled error in request %s", request_id)
                exc = internal_error(request_id)
            await error_response(exc)(scope, receive, send_with_id)
        finally:
            if self.access_log:
                access_log.info("%s %s %s %.1fms %s", scope["method"], scope["path"], status,
                                (time.perf_counter() - started) * 1000, request_id)
