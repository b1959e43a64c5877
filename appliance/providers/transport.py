"""The HTTP transport behind every upstream provider.

Adapters see a tiny interface: ``send(request) -> UpstreamResponse`` and ``stream(request) ->
lines``, both raising ``UpstreamStatus`` for a non-2xx answer (the adapter maps it with its
own error format) and ``UpstreamError``/``UpstreamTimeout`` for everything below HTTP.

Four backends, chosen for speed and measured side by side in ``bench/upstream_transport.py``
(ARCHITECTURE.md, "Decisions already measured here"):

- ``http1`` (the default): the lean keep-alive HTTP/1.1 client of ``appliance.providers.http1``
  (asyncio protocols and the ``httptools`` parser). aiohttp's client layer cost about 200 us
  of CPU per upstream call, a fifth of the gateway's whole work for a request; this is a
  fraction of that. The request head is built from pre-merged headers, the JSON body is
  encoded with msgspec; no cookies, no proxies from the environment, no redirects.
- ``aiohttp``: one ``aiohttp.ClientSession`` per provider, used directly (the previous
  default). Compared with httpx-aiohttp it joins the URL once per path and has no cookie jar.
- ``httpx-aiohttp``: httpx's ``AsyncClient`` on the aiohttp transport.
- ``httpx``: plain ``httpx.AsyncClient``, the baseline; it collapses under concurrency.

Each provider gets its own pooled client, opened lazily inside the running loop and closed by
``aclose``. The in-process mock (``mock_transport``) always runs on httpx.

Four timeouts, because one number cannot tell a dead server from a slow prompt from a stalled
stream: ``connect`` (the library's), ``first_byte`` (until headers and the first body chunk),
``between_chunks`` (each later read) and ``total`` (a deadline over the whole exchange). The
last three are enforced here, not by the library, so they mean the same on every backend:
the http1 and aiohttp backends keep one ``asyncio.timeout`` per exchange and move it before
each read (and disarm it while the caller holds a line); the httpx backends wrap each read.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import httpx
import msgspec
from yarl import URL

from appliance.errors import UpstreamError, UpstreamTimeout
from appliance.providers import http1
from appliance.providers.config import TimeoutsConfig
from appliance.providers.credentials import Secret

Backend = Literal["http1", "aiohttp", "httpx-aiohttp", "httpx"]

_JSON_HEADERS = {"content-type": "application/json"}
#: Pre-joined URLs kept per transport; more distinct (path, params) than this is not a
#: provider's fixed set of endpoints, so the cache starts over rather than grow.
_MAX_URLS = 256


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


def _unreachable(provider: str) -> UpstreamError:
    return UpstreamError(f"Provider '{provider}' cannot be reached.", code="upstream_unreachable")


def _connect_timeout(provider: str) -> UpstreamTimeout:
    return UpstreamTimeout(f"Provider '{provider}' did not accept the connection in time.",
                           code="upstream_connect_timeout")


def _connection_failed(provider: str) -> UpstreamError:
    return UpstreamError(f"The connection to provider '{provider}' failed.",
                         code="upstream_connection_error")


def map_transport_error(provider: str, exc: httpx.TransportError) -> UpstreamError:
    """httpx's errors into the tree. httpx-aiohttp reports a refused connection as
    ``ConnectTimeout``, so the underlying aiohttp error decides."""
    causes = list(_chain(exc))[1:]
    if any(isinstance(c, aiohttp.ClientConnectorError) for c in causes) or (
            isinstance(exc, httpx.ConnectError)):
        return _unreachable(provider)
    from_aiohttp = any(type(c).__module__.startswith("aiohttp") for c in causes)
    if any(isinstance(c, aiohttp.ConnectionTimeoutError) for c in causes) or (
            isinstance(exc, httpx.ConnectTimeout) and not from_aiohttp):
        return _connect_timeout(provider)
    if any(isinstance(c, TimeoutError) for c in causes) or (
            isinstance(exc, httpx.TimeoutException) and not from_aiohttp):
        return UpstreamTimeout(f"Provider '{provider}' did not answer in time.")
    return _connection_failed(provider)


def map_aiohttp_error(provider: str, exc: OSError | aiohttp.ClientError) -> UpstreamError:
    """aiohttp's errors into the tree, as ``map_transport_error`` does for httpx's: a refused
    or unresolvable host, the library's own (connect) timeout, anything else on the wire."""
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return UpstreamError(f"Provider '{provider}' cannot be reached: its proxy does not "
                             "answer.", code="upstream_unreachable")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        why = (" (Proxy Authentication Required: check proxy_credential)"
               if exc.status == 407 else "")
        return UpstreamError(f"Provider '{provider}': its proxy refused the connection with "
                             f"HTTP {exc.status}{why}.", code="upstream_proxy_refused")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _unreachable(provider)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return _connect_timeout(provider)
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"Provider '{provider}' did not answer in time.")
    return _connection_failed(provider)


class _Deadline:
    """The first-byte, between-chunks and total limits of one exchange as one
    ``asyncio.timeout``, moved before each read rather than a new context per read."""

    __slots__ = ("clock", "loop", "total_at", "seconds", "what", "started")

    def __init__(self, total: float) -> None:
        self.clock = asyncio.timeout(None)
        self.loop = asyncio.get_running_loop()
        self.total_at = self.loop.time() + total
        self.seconds, self.what, self.started = 0.0, "", 0.0

    def arm(self, seconds: float, what: str) -> None:
        """The next wait may last ``seconds``, and never past the total deadline."""
        now = self.loop.time()
        self.seconds, self.what, self.started = seconds, what, now
        self.clock.reschedule(min(now + seconds, self.total_at))

    def disarm(self) -> None:
        """While the caller holds a line, its own pace is not the upstream's delay."""
        self.clock.reschedule(None)

    def error(self, provider: str) -> UpstreamTimeout:
        remaining = self.total_at - self.started
        budget = max(0.0, min(self.seconds, remaining))
        which = "total" if remaining <= self.seconds else self.what
        return UpstreamTimeout(f"Provider '{provider}' did not answer in time "
                               f"({which} timeout, {budget:.1f}s).")


def _split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """The complete lines in ``data`` (ended by LF, CRLF or CR, as httpx splits them) and
    the unfinished rest. A CR at the very end is held back: its LF may be in the next read."""
    held = b""
    if b"\r" in data:
        if data.endswith(b"\r"):
            data, held = data[:-1], b"\r"
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = data.split(b"\n")
    rest = lines.pop() + held
    return lines, rest


class _Lines:
    """A stream's complete lines as its chunks arrive, decoded, a batch per chunk."""

    __slots__ = ("rest",)

    def __init__(self) -> None:
        self.rest = b""

    def feed(self, chunk: bytes) -> list[str]:
        lines, self.rest = _split_lines(self.rest + chunk if self.rest else chunk)
        return [line.decode("utf-8", "replace") for line in lines]

    def end(self) -> list[str]:
        """The unterminated last line, if any."""
        rest = self.rest.removesuffix(b"\r")
        return [rest.decode("utf-8", "replace")] if rest else []


class Transport:
    """A pooled HTTP client for one provider, enforcing the four timeouts."""

    def __init__(self, provider: str, base_url: str, timeouts: TimeoutsConfig,
                 max_connections: int = 64, headers: Mapping[str, str] | None = None, *,
                 backend: Backend = "http1",
                 mock: httpx.AsyncBaseTransport | None = None,
                 proxy: str | None = None, proxy_auth: Secret | None = None,
                 ca_file: str | None = None) -> None:
        self.provider = provider
        self.base_url = base_url
        self.timeouts = timeouts
        self.max_connections = max_connections
        self.headers = dict(headers or {})
        self.backend = backend
        self.mock = mock
        self._client: httpx.AsyncClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[tuple[str, tuple[tuple[str, str], ...]], URL] = {}
        #: ``http://host:port`` of a forward proxy, and its ``user:password``
        self.proxy = proxy
        #: The ``Proxy-Authorization`` value, made once from ``user:password``
        self._proxy_auth: Secret | None = None
        if proxy_auth is not None:
            user, _, password = proxy_auth.reveal().partition(":")
            self._proxy_auth = Secret(aiohttp.encode_basic_auth(user, password))
        #: Verifies TLS upstreams against ``ca_file`` instead of the system's CAs.
        self._ssl = ssl.create_default_context(cafile=ca_file) if ca_file else None
        # The lean client connects directly; behind a proxy aiohttp's client speaks CONNECT.
        self._direct = mock is None and (backend == "aiohttp" or proxy is not None)
        self._lean = mock is None and not self._direct
        self._pools: dict[tuple[str, str, int], http1.Pool] = {}
        #: Lower-cased default headers, then JSON's, for the http1 backend.
        self._base_headers = {"user-agent": "appliance", "accept": "*/*",
                              **{k.lower(): v for k, v in self.headers.items()}}
        self._json_headers = {**self._base_headers, **_JSON_HEADERS}

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """The whole answer; a non-2xx one raises ``UpstreamStatus``."""
        if self._lean:
            return await self._send_http1(request)
        if self._direct:
            return await self._send_aiohttp(request)
        return await self._send_httpx(request)

    def stream(self, request: UpstreamRequest) -> AsyncGenerator[str, None]:
        """The answer's lines as they arrive (SSE). Closing the iterator closes the
        connection, which is how a client's disconnect stops the upstream's work."""
        if self._lean or self._direct:
            return _lines(self.stream_batches(request))
        return self._stream_httpx(request)

    def stream_batches(self, request: UpstreamRequest) -> AsyncGenerator[list[str], None]:
        """``stream``, a list of lines at a time: those that arrived in one read. A stream's
        tokens often come several to a read, and each step through an async generator
        costs about a microsecond; providers take the lines this way."""
        if self._lean:
            return self._stream_http1(request)
        if self._direct:
            return self._stream_aiohttp(request)
        return _batches(self._stream_httpx(request))

    # -- http1, the lean client -------------------------------------------------------------

    def _pool(self, url: URL) -> http1.Pool:
        key = (url.scheme, url.raw_host or "", url.port or 0)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = http1.Pool(url.scheme, key[1], key[2],
                                                 self.max_connections, self.timeouts.connect,
                                                 self._ssl)
        return pool

    async def _request_http1(self, request: UpstreamRequest, deadline: _Deadline
                             ) -> tuple[http1.Pool, http1.Connection, http1.Response]:
        """Send the request and wait for the headers (under the first-byte limit)."""
        url = self._url(request)
        if request.json is None:
            body = b""
            headers = ({**self._base_headers, **{k.lower(): v for k, v in
                                                 request.headers.items()}}
                       if request.headers else self._base_headers)
        else:
            body = msgspec.json.encode(request.json)
            headers = ({**self._json_headers, **{k.lower(): v for k, v in
                                                 request.headers.items()}}
                       if request.headers else self._json_headers)
        host = url.raw_host or ""
        if not url.is_default_port():
            host = f"{host}:{url.port}"
        head = http1.request_head(request.method, url.raw_path_qs, host, headers,
                                  len(body) if body or request.method in ("POST", "PUT")
                                  else None)
        deadline.arm(self.timeouts.first_byte, "first byte")
        pool = self._pool(url)
        while True:
            conn = await pool.acquire()
            try:
                response = conn.begin(head + body)
                await response.headers_received()
            except http1.ConnectionLost:
                pool.release(conn)
                if conn.reused and not response.ready:
                    # An idle keep-alive connection the upstream had closed as it was reused
                    # (servers drop idle ones after a few seconds: uvicorn, so vLLM, after 5):
                    # nothing came back, so the request was not served. Again on the next
                    # connection: each stale one is closed and a fresh one is never retried,
                    # so this ends.
                    continue
                raise
            except BaseException:
                pool.release(conn)
                raise
            return pool, conn, response

    def _map_http1(self, exc: BaseException, deadline: _Deadline) -> UpstreamError:
        if isinstance(exc, TimeoutError) and deadline.clock.expired():
            return deadline.error(self.provider)
        if isinstance(exc, http1.ConnectTimeout):
            return _connect_timeout(self.provider)
        if isinstance(exc, http1.ConnectionLost):
            return _connection_failed(self.provider)
        if isinstance(exc, TimeoutError):
            return UpstreamTimeout(f"Provider '{self.provider}' did not answer in time.")
        return _unreachable(self.provider)  # OSError while connecting: refused, no such host

    async def _read_http1(self, response: http1.Response, deadline: _Deadline) -> bytes:
        parts: list[bytes] = []
        seconds, what = self.timeouts.first_byte, "first byte"
        while True:
            chunk = response.read_nowait()
            if chunk is None:  # only a wait needs its limit set (moving it costs a timer)
                deadline.arm(seconds, what)
                chunk = await response.read()
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
            seconds, what = self.timeouts.between_chunks, "between chunks"

    async def _send_http1(self, request: UpstreamRequest) -> UpstreamResponse:
        deadline = _Deadline(self.timeouts.total)
        try:
            async with deadline.clock:
                pool, conn, response = await self._request_http1(request, deadline)
                try:
                    body = await self._read_http1(response, deadline)
                finally:
                    pool.release(conn)  # to the pool if read to the end, else closed
        except (TimeoutError, OSError, http1.ConnectTimeout, http1.ConnectionLost) as exc:
            raise self._map_http1(exc, deadline) from exc
        answer = UpstreamResponse(response.status, response.headers, body)
        if response.status >= 300:
            raise UpstreamStatus(answer)
        return answer

    async def _stream_http1(self, request: UpstreamRequest
                            ) -> AsyncGenerator[list[str], None]:
        deadline = _Deadline(self.timeouts.total)
        held: tuple[http1.Pool, http1.Connection] | None = None
        try:
            async with deadline.clock:
                pool, conn, response = await self._request_http1(request, deadline)
                held = pool, conn
                if response.status >= 300:
                    body = await self._read_http1(response, deadline)
                    raise UpstreamStatus(UpstreamResponse(response.status, response.headers,
                                                          body))
                deadline.disarm()
                seconds, what = self.timeouts.first_byte, "first byte"
                lines = _Lines()
                while True:
                    chunk = response.read_nowait()
                    if chunk is None:
                        deadline.arm(seconds, what)
                        chunk = await response.read()
                        deadline.disarm()
                    if not chunk:
                        break
                    seconds, what = self.timeouts.between_chunks, "between chunks"
                    if batch := lines.feed(chunk):
                        yield batch
                if last := lines.end():
                    yield last
        except (TimeoutError, OSError, http1.ConnectTimeout, http1.ConnectionLost) as exc:
            raise self._map_http1(exc, deadline) from exc
        finally:
            if held is not None:
                held[0].release(held[1])  # closes the connection unless read to the end

    # -- aiohttp, directly ----------------------------------------------------------------

    def _open_session(self) -> aiohttp.ClientSession:
        """The session, created on first use: aiohttp sessions belong to a running loop."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0,
                                             ssl=self._ssl if self._ssl is not None else True)
            self._session = aiohttp.ClientSession(
                # Behind a proxy the provider's headers go with each request instead: aiohttp
                # builds its CONNECT from the session's headers and would hand the API key
                # to the proxy as Proxy-Authorization.
                connector=connector, headers=None if self.proxy else self.headers,
                cookie_jar=aiohttp.DummyCookieJar(),
                # Only connect is left to the library; the other limits are _Deadline's.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeouts.connect))
        return self._session

    def _url(self, request: UpstreamRequest) -> URL:
        """``base_url`` joined with the path as httpx joins them, once per path and params."""
        key = (request.path, tuple(request.params.items()))
        url = self._urls.get(key)
        if url is None:
            if "://" in request.path:
                url = URL(request.path)
            else:
                url = URL(self.base_url.rstrip("/") + "/" + request.path.lstrip("/"))
            if request.params:
                url = url.update_query(dict(request.params))
            if len(self._urls) >= _MAX_URLS:
                self._urls.clear()
            self._urls[key] = url
        return url

    async def _request_aiohttp(self, request: UpstreamRequest,
                               deadline: _Deadline) -> aiohttp.ClientResponse:
        """Send the request and wait for the headers (under the first-byte limit)."""
        session = self._session or self._open_session()
        if request.json is None:
            data, headers = None, request.headers or None
        else:
            data = msgspec.json.encode(request.json)
            headers = {**_JSON_HEADERS, **request.headers} if request.headers else _JSON_HEADERS
        deadline.arm(self.timeouts.first_byte, "first byte")
        if self.proxy is None:
            return await session.request(request.method, self._url(request), data=data,
                                         headers=headers, allow_redirects=False)
        url = self._url(request)
        headers = {**self.headers, **(headers or {})}
        proxy_headers = None
        if self._proxy_auth is not None:
            auth = {"Proxy-Authorization": self._proxy_auth.reveal()}
            if url.scheme == "https":  # on the CONNECT request, never inside the tunnel
                proxy_headers = auth
            else:  # a plain request is sent to the proxy itself
                headers.update(auth)
        return await session.request(request.method, url, data=data, headers=headers,
                                     allow_redirects=False, proxy=self.proxy,
                                     proxy_headers=proxy_headers)

    async def _read_aiohttp(self, response: aiohttp.ClientResponse,
                            deadline: _Deadline) -> bytes:
        content = response.content
        parts: list[bytes] = []
        seconds, what = self.timeouts.first_byte, "first byte"
        while not content.at_eof():
            deadline.arm(seconds, what)
            chunk = await content.readany()
            if not chunk:
                break
            parts.append(chunk)
            seconds, what = self.timeouts.between_chunks, "between chunks"
        return b"".join(parts)

    async def _send_aiohttp(self, request: UpstreamRequest) -> UpstreamResponse:
        deadline = _Deadline(self.timeouts.total)
        try:
            async with deadline.clock:
                response = await self._request_aiohttp(request, deadline)
                try:
                    body = await self._read_aiohttp(response, deadline)
                finally:
                    response.release()  # to the pool if read to the end, else closed
        except TimeoutError as exc:
            if deadline.clock.expired():
                raise deadline.error(self.provider) from exc
            raise map_aiohttp_error(self.provider, exc) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise map_aiohttp_error(self.provider, exc) from exc
        answer = UpstreamResponse(response.status, response.headers, body)
        if response.status >= 300:
            raise UpstreamStatus(answer)
        return answer

    async def _stream_aiohttp(self, request: UpstreamRequest
                              ) -> AsyncGenerator[list[str], None]:
        deadline = _Deadline(self.timeouts.total)
        response: aiohttp.ClientResponse | None = None
        try:
            async with deadline.clock:
                response = await self._request_aiohttp(request, deadline)
                if response.status >= 300:
                    body = await self._read_aiohttp(response, deadline)
                    raise UpstreamStatus(UpstreamResponse(response.status, response.headers,
                                                          body))
                content = response.content
                seconds, what = self.timeouts.first_byte, "first byte"
                lines = _Lines()
                while True:
                    deadline.arm(seconds, what)
                    chunk = await content.readany()
                    deadline.disarm()
                    if not chunk:
                        break
                    seconds, what = self.timeouts.between_chunks, "between chunks"
                    if batch := lines.feed(chunk):
                        yield batch
                if last := lines.end():
                    yield last
        except TimeoutError as exc:
            if deadline.clock.expired():
                raise deadline.error(self.provider) from exc
            raise map_aiohttp_error(self.provider, exc) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise map_aiohttp_error(self.provider, exc) from exc
        finally:
            if response is not None:
                response.release()  # closes the connection unless the body was read to the end

    # -- httpx, on the aiohttp transport or its own (the bench baselines, and the mock) ---

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
            elif self.backend == "httpx":
                self._client = httpx.AsyncClient(**options)
            else:
                from httpx_aiohttp import HttpxAiohttpClient

                self._client = HttpxAiohttpClient(**options)
        return self._client

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

    async def _send_httpx(self, request: UpstreamRequest) -> UpstreamResponse:
        deadline = asyncio.get_running_loop().time() + self.timeouts.total
        async with self._open_response(request, deadline) as response:
            with self._mapped():
                body = await self._read_all(response, deadline, self.timeouts.first_byte)
            return UpstreamResponse(response.status_code, response.headers, body)

    async def _stream_httpx(self, request: UpstreamRequest) -> AsyncGenerator[str, None]:
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


async def _lines(batches: AsyncGenerator[list[str], None]) -> AsyncGenerator[str, None]:
    try:
        async for batch in batches:
            for line in batch:
                yield line
    finally:
        await batches.aclose()


async def _batches(lines: AsyncGenerator[str, None]) -> AsyncGenerator[list[str], None]:
    try:
        async for line in lines:
            yield [line]
    finally:
        await lines.aclose()


def mock_transport(handler: Any, *, provider: str = "mock", base_url: str = "http://mock",
                   timeouts: TimeoutsConfig | None = None) -> Transport:
    """An in-process ``Transport`` whose answers come from ``handler(httpx.Request) ->
    httpx.Response`` (sync or async), for the adapters' unit tests."""
    return Transport(provider, base_url, timeouts or TimeoutsConfig(),
                     mock=httpx.MockTransport(handler))
