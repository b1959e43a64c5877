"""Providers behind a forward proxy (``proxy``, ``proxy_credential``) and with their own CAs
(``ca_file``), against real sockets: a small CONNECT proxy on loopback that records what it
was asked, in front of the loopback upstreams of ``test_http1``."""

from __future__ import annotations

import asyncio
import base64
import ssl
from pathlib import Path

import msgspec
import pytest

from appliance.config import ConfigError
from appliance.errors import UpstreamError
from appliance.providers.config import ProviderConfig, TimeoutsConfig
from appliance.providers.credentials import Secret
from appliance.providers.registry import build_provider
from appliance.providers.transport import Transport
from tests.appliance.providers.test_http1 import REQUEST, Server, _certificates, _plain


class Proxy:
    """A forward proxy: ``CONNECT host:port`` opens a tunnel, an absolute-form request is
    passed on (as origin-form) on a connection of its own. With ``credential`` set it answers
    407 to a request without that ``user:password``."""

    def __init__(self, credential: str | None = None) -> None:
        self.credential = credential
        self.requests: list[str] = []  # the request lines it was sent
        self.authorizations: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            line, *fields = head.split("\r\n")
            self.requests.append(line)
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (f.partition(":") for f in fields if f)}
            given = headers.get("proxy-authorization", "")
            self.authorizations.append(given)
            if self.credential is not None and given != "Basic " + base64.b64encode(
                    self.credential.encode()).decode():
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b"proxy-authenticate: Basic realm=\"x\"\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
                return
            method, target, version = line.split(" ")
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:  # absolute-form: http://host:port/path
                rest = target.split("://", 1)[1]
                authority, _, path = rest.partition("/")
                host, _, port = authority.rpartition(":")
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                # one exchange per connection, so that every request is seen here
                kept = [f for f in fields if f and not f.lower().startswith(
                    ("proxy-", "connection:"))] + ["Connection: close"]
                up_writer.write(("\r\n".join([f"{method} /{path} {version}", *kept])
                                 + "\r\n\r\n").encode("latin-1"))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _listen(handler: object, context: ssl.SSLContext | None = None
                  ) -> tuple[asyncio.Server, int]:
    listener = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context)  # type: ignore[arg-type]
    return listener, listener.sockets[0].getsockname()[1]


def _tls_upstream(tmp: Path) -> tuple[Path, ssl.SSLContext]:
    ca, cert, key = _certificates(tmp, "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return ca, context


def test_https_upstream_through_a_connect_tunnel_with_its_own_ca(tmp_path: Path) -> None:
    """The proxy sees ``CONNECT localhost:port`` and nothing else: the request, with its API
    key, goes through the tunnel under TLS, verified against ``ca_file``."""
    ca, context = _tls_upstream(tmp_path)

    async def main() -> None:
        upstream = Server(lambda _: _plain(200, b'{"ok": true}'))
        up_listener, up_port = await _listen(upstream.handle, context)
        proxy = Proxy()
        proxy_listener, proxy_port = await _listen(proxy.handle)
        transport = Transport("p", f"https://localhost:{up_port}/v1", TimeoutsConfig(),
                              headers={"Authorization": "Bearer sk-secret"},
                              proxy=f"http://127.0.0.1:{proxy_port}", ca_file=str(ca),
                              proxy_auth=Secret("svc:pw"))
        try:
            for _ in range(2):
                answer = await transport.send(REQUEST)
                assert answer.status == 200 and answer.body == b'{"ok": true}'
            lines = [line async for line in transport.stream(REQUEST)]
            assert lines == ['{"ok": true}']
            # a proxy without a credential is told nothing: above all not the API key
            anonymous = Transport("p", f"https://localhost:{up_port}/v1", TimeoutsConfig(),
                                  headers={"Authorization": "Bearer sk-secret"},
                                  proxy=f"http://127.0.0.1:{proxy_port}", ca_file=str(ca))
            try:
                assert (await anonymous.send(REQUEST)).status == 200
            finally:
                await anonymous.aclose()
            assert proxy.authorizations[-1] == ""
        finally:
            await transport.aclose()
            up_listener.close()
            proxy_listener.close()
        assert proxy.requests and all(r == f"CONNECT localhost:{up_port} HTTP/1.1"
                                      for r in proxy.requests)
        assert b"authorization: bearer sk-secret" in upstream.requests[0].lower()
        # the proxy's credential went to the proxy, on the CONNECT, and not through the tunnel
        assert proxy.authorizations[0] == "Basic " + base64.b64encode(b"svc:pw").decode()
        assert not any(b"proxy-authorization" in r.lower() for r in upstream.requests)

    asyncio.run(main())


@pytest.mark.parametrize("backend", ["http1", "aiohttp"])
def test_tls_upstreams_are_verified_against_the_ca_file(tmp_path: Path, backend: str) -> None:
    """With ``ca_file`` the test CA's certificate is accepted; without it, the system's CAs
    do not know that CA and the upstream is refused (never a silent plain connection)."""
    ca, context = _tls_upstream(tmp_path)

    async def main(ca_file: str | None) -> int:
        listener, port = await _listen(Server(lambda _: _plain(200, b"{}")).handle, context)
        transport = Transport("p", f"https://localhost:{port}/v1", TimeoutsConfig(),
                              backend=backend, ca_file=ca_file)  # type: ignore[arg-type]
        try:
            return (await transport.send(REQUEST)).status
        finally:
            await transport.aclose()
            listener.close()

    assert asyncio.run(main(str(ca))) == 200
    with pytest.raises(UpstreamError):
        asyncio.run(main(None))


async def _refusal(transport: Transport) -> UpstreamError:
    """The error one request through ``transport`` ends in (then the transport is closed)."""
    try:
        with pytest.raises(UpstreamError) as caught:
            await transport.send(REQUEST)
    finally:
        await transport.aclose()
    return caught.value


def test_proxy_credentials_and_a_refusing_proxy() -> None:
    """A proxy that wants a password: without it a clear error naming the status (never the
    credential); with it the request goes through, as an absolute-form http request."""
    async def main() -> None:
        upstream = Server(lambda _: _plain(200, b'{"ok": true}'))
        up_listener, up_port = await _listen(upstream.handle)
        proxy = Proxy(credential="alice:s3cret-pw")
        proxy_listener, proxy_port = await _listen(proxy.handle)
        base, via = f"http://127.0.0.1:{up_port}/v1", f"http://127.0.0.1:{proxy_port}"
        try:
            good = Transport("p", base, TimeoutsConfig(), proxy=via,
                             proxy_auth=Secret("alice:s3cret-pw"))
            try:
                assert (await good.send(REQUEST)).status == 200
            finally:
                await good.aclose()
            assert proxy.requests[-1] == f"POST http://127.0.0.1:{up_port}/v1/chat/completions HTTP/1.1"
            assert upstream.requests[-1].startswith(b"POST /v1/chat/completions HTTP/1.1")
            assert b"proxy-authorization" not in upstream.requests[-1].lower()  # the proxy's
            refused = await _refusal(Transport(
                "p", f"https://localhost:{up_port}/v1", TimeoutsConfig(), proxy=via,
                proxy_auth=Secret("alice:wrong")))
            assert refused.code == "upstream_proxy_refused"
            assert "407" in refused.message and "proxy_credential" in refused.message
            assert "wrong" not in refused.message and "alice" not in refused.message
        finally:
            up_listener.close()
            proxy_listener.close()

    asyncio.run(main())


def test_a_proxy_that_is_down_is_an_unreachable_upstream() -> None:
    async def main() -> None:
        listener, port = await _listen(Proxy().handle)
        listener.close()
        await listener.wait_closed()  # nothing listens there now
        refused = await _refusal(Transport("p", "https://api.example/v1",
                                           TimeoutsConfig(connect=2),
                                           proxy=f"http://127.0.0.1:{port}"))
        assert refused.code == "upstream_unreachable" and "proxy" in refused.message

    asyncio.run(main())


def _config(**fields: object) -> ProviderConfig:
    return msgspec.convert({"name": "openai", "kind": "openai", "models": ["gpt-4o-mini"],
                            "credential": "env:KEY", **fields}, ProviderConfig)


@pytest.mark.parametrize(("fields", "message"), [
    ({"proxy": "https://proxy.lan:3128"}, "must be an http:// URL"),
    ({"proxy": "socks5://proxy.lan:1080"}, "must be an http:// URL"),
    ({"proxy": "http://bob:pw@proxy.lan:3128"}, "must not hold a user or password"),
    ({"proxy_credential": "env:PROXY_AUTH"}, "needs a `proxy`"),
])
def test_proxy_settings_are_checked(fields: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        _config(**fields)


def test_build_provider_resolves_the_proxy_credential(tmp_path: Path) -> None:
    config = _config(proxy="http://proxy.lan:3128", proxy_credential="env:PROXY_AUTH")
    provider = build_provider(config, environ={"KEY": "sk-1", "PROXY_AUTH": "svc:pw"})
    assert provider.transport.proxy == "http://proxy.lan:3128"
    with pytest.raises(ConfigError, match="must hold user:password") as caught:
        build_provider(config, environ={"KEY": "sk-1", "PROXY_AUTH": "just-a-token"})
    assert "just-a-token" not in str(caught.value)
    with pytest.raises(ConfigError, match="PROXY_AUTH"):
        build_provider(config, environ={"KEY": "sk-1"})
    with pytest.raises(ConfigError, match="ca_file"):
        build_provider(_config(ca_file=str(tmp_path / "missing.pem")), environ={"KEY": "k"})
