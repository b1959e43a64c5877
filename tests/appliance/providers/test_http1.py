"""The lean HTTP/1.1 backend of ``Transport`` against real sockets: a tiny asyncio server on
loopback that answers with whatever framing a test asks for."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.errors import UpstreamError, UpstreamTimeout
from appliance.providers.config import TimeoutsConfig
from appliance.providers.transport import Transport, UpstreamRequest, UpstreamStatus

Answer = Callable[[bytes], list[bytes]]


class Server:
    """Reads one request head (and its Content-Length body) at a time; ``answer`` gives the
    raw chunks to send back, with a short pause between them. Counts connections."""

    def __init__(self, answer: Answer, close_after: bool = False, pause: float = 0.0) -> None:
        self.answer, self.close_after, self.pause = answer, close_after, pause
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                for chunk in self.answer(body):
                    writer.write(chunk)
                    await writer.drain()
                    if self.pause:
                        await asyncio.sleep(self.pause)
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _serve(server: Server) -> tuple[asyncio.Server, str]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    return listener, f"http://127.0.0.1:{port}/v1"


def _plain(status: int, body: bytes, extra: str = "") -> list[bytes]:
    return [f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}"
            f"content-length: {len(body)}\r\n\r\n".encode() + body]


def _transport(base: str, **timeouts: float) -> Transport:
    return Transport("t", base, TimeoutsConfig(**timeouts), headers={"Authorization": "Bearer k"})


REQUEST = UpstreamRequest("POST", "/chat/completions", {"a": 1})


def test_keep_alive_reuses_one_connection_and_sends_the_json_body() -> None:
    async def main() -> None:
        server = Server(lambda body: _plain(200, b'{"ok": true}'))
        listener, base = await _serve(server)
        transport = _transport(base)
        try:
            for _ in range(3):
                answer = await transport.send(REQUEST)
                assert answer.status == 200 and answer.body == b'{"ok": true}'
                assert answer.headers["content-type"] == "application/json"
        finally:
            await transport.aclose()
            listener.close()
        assert server.connections == 1
        head = server.requests[0].lower()
        assert head.startswith(b"post /v1/chat/completions http/1.1\r\n")
        assert b"authorization: bearer k\r\n" in head and b"host: 127.0.0.1:" in head
        assert server.requests[0].endswith(b'{"a":1}')

    asyncio.run(main())


def test_chunked_gzip_and_until_close_bodies() -> None:
    packed = gzip.compress(b"hello world")

    def chunked(_: bytes) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
                b"content-encoding: gzip\r\n\r\n",
                f"{len(packed[:5]):x}\r\n".encode() + packed[:5] + b"\r\n",
                f"{len(packed[5:]):x}\r\n".encode() + packed[5:] + b"\r\n0\r\n\r\n"]

    def until_close(_: bytes) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n", b"until ", b"close"]

    async def main() -> None:
        for answer, close, expected in ((chunked, False, b"hello world"),
                                        (until_close, True, b"until close")):
            listener, base = await _serve(Server(answer, close_after=close, pause=0.01))
            transport = _transport(base)
            try:
                assert (await transport.send(REQUEST)).body == expected
            finally:
                await transport.aclose()
                listener.close()

    asyncio.run(main())


def test_error_status_is_raised_with_its_body() -> None:
    async def main() -> None:
        listener, base = await _serve(Server(lambda _: _plain(
            429, b'{"error": {}}', "retry-after: 2\r\n")))
        transport = _transport(base)
        try:
            with pytest.raises(UpstreamStatus) as caught:
                await transport.send(REQUEST)
            response = caught.value.response
            assert response.status == 429 and response.headers["retry-after"] == "2"
            assert response.body == b'{"error": {}}'
        finally:
            await transport.aclose()
            listener.close()

    asyncio.run(main())


def test_stream_yields_lines_as_they_come_and_closing_early_drops_the_connection() -> None:
    def events(_: bytes) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                b"8\r\ndata: a\n\r\n", b"b\r\ndata: b\r\n\r\n\r\n", b"0\r\n\r\n"]

    async def main() -> None:
        server = Server(events, pause=0.01)
        listener, base = await _serve(server)
        transport = _transport(base)
        try:
            lines = [line async for line in transport.stream(REQUEST)]
            assert lines == ["data: a", "data: b", ""]
            stream = transport.stream(REQUEST)  # the same connection, read to its end before
            assert await anext(stream) == "data: a"
            await stream.aclose()  # left early: that connection is not reused
            assert [line async for line in transport.stream(REQUEST)][0] == "data: a"
        finally:
            await transport.aclose()
            listener.close()
        assert server.connections == 2

    asyncio.run(main())


def test_chunks_that_arrive_together_come_out_as_one_batch_of_lines() -> None:
    """An upstream that sends each event as its own HTTP chunk, all in one write: one read
    takes them all (``stream_batches`` gives their lines in one list), split once."""
    events = [b"data: %d\n\n" % i for i in range(12)]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)

    def answer(_: bytes) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunked
                + b"0\r\n\r\n"]

    async def main() -> None:
        server = Server(answer)
        listener, base = await _serve(server)
        transport = _transport(base)
        try:
            batches = [batch async for batch in transport.stream_batches(REQUEST)]
            assert len(batches) == 1
            assert batches[0] == [line for i in range(12) for line in (f"data: {i}", "")]
            lines = [line async for line in transport.stream(REQUEST)]
            assert lines == batches[0]
        finally:
            await transport.aclose()
            listener.close()

    asyncio.run(main())


def test_failures_map_onto_the_error_tree() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]

    def hang_up(_: bytes) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort"]

    async def main() -> None:
        transport = _transport(f"http://127.0.0.1:{closed_port}/v1")
        with pytest.raises(UpstreamError) as caught:
            await transport.send(REQUEST)
        assert caught.value.code == "upstream_unreachable"
        listener, base = await _serve(Server(hang_up, close_after=True))
        transport = _transport(base)
        try:
            with pytest.raises(UpstreamError) as caught:
                await transport.send(REQUEST)
            assert caught.value.code == "upstream_connection_error"
        finally:
            await transport.aclose()
            listener.close()
        slow = Server(lambda _: [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{", b"}"],
                      pause=0.5)
        listener, base = await _serve(slow)
        transport = _transport(base, between_chunks=0.1)
        try:
            with pytest.raises(UpstreamTimeout, match="between chunks"):
                await transport.send(REQUEST)
        finally:
            await transport.aclose()
            listener.close()

    asyncio.run(main())


def test_the_pool_holds_at_most_max_connections() -> None:
    async def main() -> None:
        server = Server(lambda _: _plain(200, b"{}"), pause=0.01)
        listener, base = await _serve(server)
        transport = Transport("t", base, TimeoutsConfig(), max_connections=2)
        try:
            answers = await asyncio.gather(*(transport.send(REQUEST) for _ in range(8)))
            assert all(a.status == 200 for a in answers)
        finally:
            await transport.aclose()
            listener.close()
        assert server.connections == 2

    asyncio.run(main())


def _certificates(tmp: Path, hostname: str) -> tuple[Path, Path, Path]:
    """A test CA (its PEM is what the client trusts) and a server certificate it signed for
    ``hostname``; returns (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "appliance test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
              .issuer_name(ca_name).public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(hours=1))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = (tmp / "ca.pem", tmp / "server.pem", tmp / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return paths


def test_tls_verifies_the_upstream_certificate(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """https upstreams: a certificate from a trusted CA for the right name is accepted, one
    for another name is refused (an UpstreamError, never a silent plain connection). (Not
    run on aiohttp: it builds its verifying context once, at import, from the CA paths of
    that moment, so a test cannot hand it a CA afterwards.)"""
    async def main(hostname: str) -> int:
        ca, cert, key = _certificates(tmp_path, hostname)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # what ssl's default context trusts
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server = Server(lambda body: _plain(200, b'{"ok": true}'))
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=context)
        port = listener.sockets[0].getsockname()[1]
        transport = Transport("t", f"https://localhost:{port}/v1", TimeoutsConfig())
        try:
            return (await transport.send(REQUEST)).status
        finally:
            await transport.aclose()
            listener.close()

    assert asyncio.run(main("localhost")) == 200
    with pytest.raises(UpstreamError):
        asyncio.run(main("upstream.example"))


def test_a_stale_keep_alive_connection_is_retried_on_a_fresh_one() -> None:
    """The upstream drops an idle keep-alive connection just as it is reused (it reads the
    request and closes without a byte back): the request goes again on a new connection,
    once; on a fresh connection the same failure is the caller's error."""
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(0)
        number = len(served)
        try:
            for exchange in range(2):
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                if exchange == 1 or number == 3:  # the reused exchange, and a third conn
                    break
                body = b'{"ok": true}'
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        listener = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        transport = _transport(f"http://127.0.0.1:{port}/v1")
        try:
            assert (await transport.send(REQUEST)).status == 200  # connection 1
            assert (await transport.send(REQUEST)).status == 200  # 1 is stale: again on 2
            assert len(served) == 2
            transport._pools.clear()  # no idle connection left: the next one is fresh
            with pytest.raises(UpstreamError):
                await transport.send(REQUEST)  # connection 3 closes at once: not retried
            assert len(served) == 3
        finally:
            await transport.aclose()
            listener.close()

    asyncio.run(main())
