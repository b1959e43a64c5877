"""What every HTTP provider shares: driving its pure translation over a ``Transport``.

A provider module supplies four pure hooks (build the upstream request, parse a response,
parse one stream event, map an error) and its auth headers; this base class does the I/O,
turns stream events into ``Delta``s with cumulative usage, detects a stream cut short, and
maps every failure at this one boundary, so no adapter repeats the plumbing.

Upstream failures, as clients see them (the decision for the contract suite):

- 401/403: ``UpstreamError`` 502 ``upstream_auth_failed``. The client's own key was fine; the
  appliance's upstream credential was not, which is the operator's problem, not the client's.
- 404: ``UpstreamError`` 502 ``upstream_not_found`` (a model or deployment the config names
  but the upstream does not have).
- 400: ``InvalidRequest`` (``ContextLengthExceeded`` when the upstream says so), with our own
  sentence: upstream wording is never passed through.
- 429: ``RateLimited`` with the upstream's retry-after. 408/504: ``UpstreamTimeout``.
- 5xx and 529: ``UpstreamError`` (``upstream_unavailable``/``upstream_overloaded``).
- malformed bodies: ``UpstreamError`` ``upstream_malformed_response``; a stream that ends
  before its finish event: ``upstream_stream_cut``.

Only the status and a short upstream error type (``[a-z_]+``) are logged, never the body:
upstream messages can echo part of the key.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec

from appliance.errors import (
    ApplianceError,
    ContextLengthExceeded,
    InvalidRequest,
    RateLimited,
    UnsupportedParameter,
    UpstreamError,
    UpstreamTimeout,
)
from appliance.providers.base import ModelInfo, Provider, Zone
from appliance.providers.config import ProviderConfig
from appliance.providers.credentials import Secret
from appliance.providers.transport import (
    Transport,
    UpstreamRequest,
    UpstreamResponse,
    UpstreamStatus,
)
from appliance.types import Delta, FinishReason, Generation, GenerationRequest, Message, Usage

log = logging.getLogger("appliance.providers")

_SAFE_TYPE = re.compile(r"^[A-Za-z_]{1,64}$")
_PARSE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError,
                 msgspec.DecodeError)


def approx_tokens(text: str) -> int:
    """About four characters a token: used only where the upstream reports no usage (yet)."""
    return (len(text) + 3) // 4


def chat_messages(request: GenerationRequest) -> list[Message]:
    """A plain completion prompt goes upstream as one user message (chat APIs only)."""
    if request.messages is not None:
        return request.messages
    return [Message("user", request.prompt or "")]


def estimate_usage(request: GenerationRequest) -> Usage:
    return Usage(sum(approx_tokens(m.content) + 4 for m in chat_messages(request)), 0)


@dataclass(slots=True)
class StreamState:
    """What a stream parser remembers between events; ``usage`` is the total so far."""

    usage: Usage
    finish_reason: FinishReason | None = None
    done: bool = False
    #: The upstream reported usage (otherwise the total is our estimate).
    reported: bool = False

    def add_text(self, text: str) -> None:
        """Count one token a content chunk until the upstream reports usage: servers stream
        a token a chunk, and undercounting keeps the running total from going backwards when
        the exact figure arrives."""
        if not self.reported:
            self.usage.completion_tokens += 1

    def report(self, prompt_tokens: int | None, completion_tokens: int | None) -> None:
        if prompt_tokens is not None:
            self.usage.prompt_tokens = prompt_tokens
        if completion_tokens is not None:
            self.usage.completion_tokens = completion_tokens
        self.reported = True


def decode_json(body: bytes | str) -> Any:
    return msgspec.json.decode(body)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms``, ``retry-after`` in seconds or as an HTTP date; None if absent."""
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        if value.strip().replace(".", "", 1).isdigit():
            return float(value)
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (ValueError, TypeError):
        return None


def error_for_status(provider: str, status: int, headers: Mapping[str, str],
                     upstream_type: str = "", *, context_length: bool = False,
                     auth_failed: bool = False, hint_retry: float | None = None
                     ) -> ApplianceError:
    """The client-visible error for an upstream HTTP failure. Messages are ours; only the
    status and allow-listed facts (retry-after, context length) come from upstream."""
    safe_type = upstream_type if _SAFE_TYPE.match(upstream_type or "") else ""
    log.warning("provider %s: upstream HTTP %d%s", provider, status,
                f" ({safe_type})" if safe_type else "")
    wait = retry_after(headers)
    wait = hint_retry if wait is None else wait
    if auth_failed or status in (401, 403):
        return UpstreamError(f"Provider '{provider}' refused the appliance's credential "
                             f"(HTTP {status}); the administrator must check it.",
                             code="upstream_auth_failed")
    if status == 404:
        return UpstreamError(f"Provider '{provider}' does not know the requested model.",
                             code="upstream_not_found")
    if status == 429:
        return RateLimited(f"Provider '{provider}' is rate limiting requests; retry later.",
                           retry_after=wait if wait is not None else 1.0)
    if status in (408, 504):
        return UpstreamTimeout(f"Provider '{provider}' did not answer in time.",
                               retry_after=wait)
    if context_length:
        return ContextLengthExceeded(f"The request is too long for the model at provider "
                                     f"'{provider}'.", param="messages")
    if status in (400, 413, 422):
        return InvalidRequest(f"Provider '{provider}' rejected the request as invalid.",
                              code="upstream_invalid_request")
    if status in (503, 529):
        return UpstreamError(f"Provider '{provider}' is overloaded; retry later.",
                             code="upstream_overloaded", retry_after=wait)
    if status >= 500:
        return UpstreamError(f"Provider '{provider}' failed (HTTP {status}).",
                             code="upstream_unavailable", retry_after=wait)
    return UpstreamError(f"Provider '{provider}' answered with unexpected HTTP {status}.")


def malformed(provider: str) -> UpstreamError:
    return UpstreamError(f"Provider '{provider}' sent a response the appliance cannot read.",
                         code="upstream_malformed_response")


class HTTPProvider(Provider):
    """An upstream reached over HTTP; subclasses supply the pure translation hooks."""

    #: Used when the config leaves ``base_url`` empty.
    default_base_url: ClassVar[str] = ""
    #: Sampling fields the upstream API cannot honour: asking for one is a 400 naming it
    #: (the contract suite's capability flags; the router can read them too).
    unsupported: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: ProviderConfig, secret: Secret | None = None,
                 transport: Transport | None = None, proxy_secret: Secret | None = None
                 ) -> None:
        self.config = config
        self.name = config.name
        self.zone: Zone = config.zone
        self.secret = secret
        if transport is None:
            headers = {**config.extra_headers, **self.auth_headers()}
            transport = Transport(config.name, config.base_url or self.default_base_url,
                                  config.timeouts, config.max_connections, headers,
                                  backend=config.transport, proxy=config.proxy or None,
                                  proxy_auth=proxy_secret, ca_file=config.ca_file or None)
        self.transport = transport

    # -- the hooks a provider module fills in (pure: data in, data out) --------------------

    def auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def build_request(self, request: GenerationRequest, stream: bool) -> UpstreamRequest:
        raise NotImplementedError

    def parse_response(self, body: Any, request: GenerationRequest) -> Generation:
        raise NotImplementedError

    def parse_stream_event(self, data: str, state: StreamState) -> str | None:
        """Text of one SSE ``data:`` payload (None if none); updates ``state``. Raises
        ``UpstreamStatus`` for an error event, so it is mapped like an HTTP error."""
        raise NotImplementedError

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes
                  ) -> ApplianceError:
        raise NotImplementedError

    # -- the I/O, shared -------------------------------------------------------------------

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(model, "chat", self.name) for model in self.config.model_ids]

    def check_supported(self, request: GenerationRequest) -> None:
        for param in sorted(self.unsupported):
            value = getattr(request.sampling, param)
            if value is not None and value != []:
                raise UnsupportedParameter(
                    f"Provider '{self.name}' does not support '{param}'.", param=param)

    def _status_error(self, exc: UpstreamStatus) -> ApplianceError:
        response: UpstreamResponse = exc.response
        return self.map_error(response.status, response.headers, response.body)

    async def generate(self, request: GenerationRequest) -> Generation:
        self.check_supported(request)
        try:
            response = await self.transport.send(self.build_request(request, stream=False))
        except UpstreamStatus as exc:
            raise self._status_error(exc) from exc
        try:
            return self.parse_response(decode_json(response.body), request)
        except _PARSE_ERRORS as exc:
            raise malformed(self.name) from exc

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        self.check_supported(request)
        state = StreamState(estimate_usage(request))
        batches = self.transport.stream_batches(self.build_request(request, stream=True))
        try:
            async for batch in batches:
                for line in batch:
                    if not line.startswith("data:"):
                        continue  # event names, comments and keep-alives carry nothing
                    try:
                        text = self.parse_stream_event(line[5:].strip(), state)
                    except _PARSE_ERRORS as exc:
                        raise malformed(self.name) from exc
                    if text:
                        yield Delta(text, None, Usage(state.usage.prompt_tokens,
                                                      state.usage.completion_tokens))
                    if state.done:
                        break
                if state.done:
                    break
        except UpstreamStatus as exc:
            raise self._status_error(exc) from exc
        finally:
            await batches.aclose()
        if state.finish_reason is None:
            raise UpstreamError(f"Provider '{self.name}' ended the stream before it was "
                                "complete.", code="upstream_stream_cut")
        if not state.reported:
            log.debug("provider %s: no usage in stream; counted approximately", self.name)
        yield Delta("", state.finish_reason, state.usage)

    async def close(self) -> None:
        await self.transport.aclose()
