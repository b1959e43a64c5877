"""The HTTP transport behind every upstream provider.

Adapters see a tiny interface: ``send(request) -> UpstreamResponse`` and ``stream(request) ->
lines``, both raising ``UpstreamStatus`` for a non-2xx answer (the adapter maps it with its
own error format) and ``UpstreamError``/``UpstreamTimeout`` for everything below HTTP.

It keeps httpx's API but runs it on the aiohttp transport (``httpx-aiohttp``) by default:
plain ``httpx.AsyncClient`` collapses under concurrency (ARCHITECTURE.md, "Decisions already
measured here"; ``bench/upstream_transport.py`` measures both side by side). Each provider
gets its own pooled client, opened lazily inside the running loop and closed by ``aclose``.

Four timeouts, because one number cannot tell a dead server from a slow prompt from a stalled
stream: ``connect`` (the library's), ``first_byte`` (until headers and the first body chunk),
``between_chunks`` (each later read) and ``total`` (a deadline over the whole exchange). The
last three are enforced here with ``asyncio.timeout`` around each read, not by the library, so
they mean the same on both backends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import httpx

from appliance.errors import UpstreamError, UpstreamTimeout
from appliance.providers.config import TimeoutsConfig

Backend = Literal["aiohttp", "httpx"]


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """What an adapter's pure translation produces: no client, no credentials."""

    method: str
    path: str
    json: Any = None
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class UpstreamStatus(Exception):
    """A non-2xx answer, for the adapter to map onto the exception tree (its body format is
    the provider's own). Never reaches a client."""

    def __init__(self, response: UpstreamResponse) -> None:
        super().__init__(f"upstream answered HTTP {response.status}")
        self.response = response


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def map_transport_error(provider: str, exc: httpx.TransportError) -> UpstreamError:
    """One place that turns library errors into the tree. httpx-aiohttp reports a refused
    connection as ``ConnectTimeout``, so the underlying aiohttp error decides."""
    causes = list(_chain(exc))[1:]
    if any(isinstance(c, aiohttp.ClientConnectorError) for c in causes) or (
            isinstance(exc, httpx.ConnectError)):
        return UpstreamError(f"Provider '{provider}' cannot be reached.",
                             code="upstream_unreachable")
    from_aiohttp = any(type(c).__module__.startswith("aiohttp") for c in causes)
    if any(isinstance(c, TimeoutError) for c in causes) or (
            isinstance(exc, httpx.TimeoutException) and not from_aiohttp):
        return UpstreamTimeout(f"Provider '{provider}' did not answer in time.")
    return UpstreamError(f"The connection to provider '{provider}' failed.",
                         code="upstream_connection_error")


class Transport:
    """A pooled HTTP client for one provider, enforcing the four timeouts."""

    def __init__(self, provider: str, base_url: str, timeouts: TimeoutsConfig,
                 max_connections: int = 64, headers: Mapping[str, str] | None = None, *,
                 backend: Backend = "aiohttp",
                 mock: httpx.AsyncBaseTransport | None = None) -> None:
        self.provider = provider
        self.base_url = base_url
        self.timeouts = timeouts
        self.max_connections = max_connections
        self.headers = dict(headers or {})
        self.backend = backend
        self.mock = mock
        self._client: httpx.AsyncClient | None = None

    def _open(self) -> httpx.AsyncClient:
        """The client, created on first use: aiohttp sessions belong to a running loop."""
        if self._client is None:
            t = self.timeouts
            options: dict[str, Any] = dict(
                base_url=self.base_url, headers=self.headers,
                # Only connect (and waiting for a pooled connection) is left to the library.
                timeout=httpx.Timeout(connect=t.connect, read=None, write=t.between_chunks,
                                      pool=t.total),
                limits=httpx.Limits(max_connections=self.max_connections,
                                    max_keepalive_connections=self.max_connections))
            if self.mock is not None:
                self._client = httpx.AsyncClient(transport=self.mock, **options)
            elif self.backend == "aiohttp":
                from httpx_aiohttp import HttpxAiohttpClient

                self._client = HttpxAiohttpClient(**options)
            else:
                self._client = httpx.AsyncClient(**options)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    @contextlib.asynccontextmanager
    async def _limit(self, seconds: float, deadline: float, what: str) -> AsyncIterator[None]:
        """Bound one wait by ``seconds`` and by what is left of the total deadline."""
        remaining = deadline - asyncio.get_running_loop().time()
        budget = max(0.0, min(seconds, remaining))
        try:
            async with asyncio.timeout(budget):
                yield
        except TimeoutError as exc:
            which = "total" if remaining <= seconds else what
            raise UpstreamTimeout(f"Provider '{self.provider}' did not answer in time "
                                  f"({which} timeout, {budget:.1f}s).") from exc

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except httpx.TransportError as exc:
            raise map_transport_error(self.provider, exc) from exc

    @contextlib.asynccontextmanager
    async def _open_response(self, request: UpstreamRequest,
                             deadline: float) -> AsyncIterator[httpx.Response]:
        client = self._open()
        built = client.build_request(request.method, request.path, json=request.json,
                                     params=dict(request.params), headers=dict(request.headers))
        with self._mapped():
            async with self._limit(self.timeouts.first_byte, deadline, "first byte"):
                response = await client.send(built, stream=True)
            try:
                if response.status_code >= 300:
                    body = await self._read_all(response, deadline, self.timeouts.first_byte)
                    raise UpstreamStatus(UpstreamResponse(response.status_code,
                                                          response.headers, body))
                yield response
            finally:
                await response.aclose()

    async def _read_all(self, response: httpx.Response, deadline: float,
                        first: float) -> bytes:
        parts: list[bytes] = []
        chunks = response.aiter_bytes()  # decoded: upstreams may gzip
        limit, what = first, "first byte"
        while True:
            async with self._limit(limit, deadline, what):
                chunk = await anext(chunks, None)
            if chunk is None:
                return b"".join(parts)
            parts.append(chunk)
            limit, what = self.timeouts.between_chunks, "between chunks"

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """The whole answer; a non-2xx one raises ``UpstreamStatus``."""
        deadline = asyncio.get_running_loop().time() + self.timeouts.total
        async with self._open_response(request, deadline) as response:
            with self._mapped():
                body = await self._read_all(response, deadline, self.timeouts.first_byte)
            return UpstreamResponse(response.status_code, response.headers, body)

    async def stream(self, request: UpstreamRequest) -> AsyncGenerator[str, None]:
        """The answer's lines as they arrive (SSE). Closing the iterator closes the
        connection, which is how a client's disconnect stops the upstream's work."""
        deadline = asyncio.get_running_loop().time() + self.timeouts.total
        async with self._open_response(request, deadline) as response:
            lines = response.aiter_lines()
            limit, what = self.timeouts.first_byte, "first byte"
            while True:
                with self._mapped():
                    async with self._limit(limit, deadline, what):
                        line = await anext(lines, None)
                if line is None:
                    return
                limit, what = self.timeouts.between_chunks, "between chunks"
                yield line


def mock_transport(handler: Any, *, provider: str = "mock", base_url: str = "http://mock",
                   timeouts: TimeoutsConfig | None = None) -> Transport:
    """An in-process ``Transport`` whose answers come from ``handler(httpx.Request) ->
    httpx.Response`` (sync or async), for the adapters' unit tests."""
    return Transport(provider, base_url, timeouts or TimeoutsConfig(),
                     mock=httpx.MockTransport(handler))
