"""A cloud provider reached through the site's forward proxy, end to end: the real server,
the mock upstream process, and a proxy on loopback that records what passed through it."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator

import openai
import pytest

from tests.appliance.providers.test_proxy import Proxy
from tests.conftest import ServerProcess, make_data_dir
from tests.mock_upstream import ENV, KEY, mock_upstream, providers_toml

PUBLIC = [{"role": "user", "content": "Name three primary colours."}]


@pytest.fixture(scope="module")
def proxy() -> Iterator[tuple[Proxy, int]]:
    """The proxy on its own event loop in a thread, for the module."""
    recorder = Proxy(credential="svc-appliance:pr0xy-pw")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []

    async def serve() -> None:
        server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            await server.serve_forever()

    task = loop.create_task(serve())

    def run() -> None:
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield recorder, port[0]
    loop.call_soon_threadsafe(task.cancel)
    thread.join(10)


def test_cloud_requests_go_through_the_proxy(proxy: tuple[Proxy, int],
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    recorder, port = proxy
    with mock_upstream(KEY) as url:
        config = providers_toml(url).replace(
            'models = ["gpt-4o-mini"]',
            f'models = ["gpt-4o-mini"]\nproxy = "http://127.0.0.1:{port}"\n'
            'proxy_credential = "env:TEST_PROXY_AUTH"', 1)
        data = make_data_dir(tmp_path_factory.mktemp("proxy"))
        server = ServerProcess(data, config, env={
            **ENV, "TEST_PROXY_AUTH": "svc-appliance:pr0xy-pw"}).start()
        try:
            client = openai.OpenAI(base_url=server.base_url, api_key=server.admin_key,
                                   max_retries=0)
            reply = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=PUBLIC, max_tokens=10)
            assert reply.headers["x-appliance-route"] == "openai/gpt-4o-mini"
            assert reply.parse().choices[0].message.content
            chunks = list(client.chat.completions.create(
                model="gpt-4o-mini", messages=PUBLIC, max_tokens=10, stream=True))
            assert any(c.choices and c.choices[0].delta.content for c in chunks)
            site = client.chat.completions.create(model="site-llama", messages=PUBLIC,
                                                  max_tokens=5)
            assert site.choices[0].message.content
            with server.client() as http:
                listed = {item["name"]: item for item in http.get(
                    "/admin/v1/providers").json()["data"]}
            assert listed["openai"]["proxy"] == f"http://127.0.0.1:{port}"
            assert listed["openai"]["transport"] == "aiohttp"
            assert listed["vllm"]["proxy"] is None and listed["vllm"]["transport"] == "http1"
            assert listed["local"]["transport"] == "local"
        finally:
            server.stop()
        log = server.output
    target = f"POST {url}/v1/chat/completions HTTP/1.1"
    assert recorder.requests.count(target) == 2  # the cloud provider's two, not the site's
    expected = "Basic " + base64.b64encode(b"svc-appliance:pr0xy-pw").decode()
    assert set(recorder.authorizations) == {expected}
    assert "pr0xy-pw" not in log
