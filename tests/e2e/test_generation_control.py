"""Flow control of local generation through the real server: client disconnects stop
generation, a full queue answers 503 with Retry-After, SIGTERM lets streams finish."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ServerProcess, make_data_dir

LONG = [{"role": "user", "content": "Count from 1 to 500, one number per line: 1, 2, 3,"}]
ONE_CONTEXT = '[local]\npool_size = 1\nqueue_size = 1\nembedding_model = ""\n'


def pool(server: ServerProcess) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(server.url + "/readyz").json()["pool"]
    return stats


def wait_for(predicate: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def open_stream(server: ServerProcess, http: httpx.Client, max_tokens: int = 2000) -> Any:
    return http.stream("POST", "/v1/chat/completions", json={
        "model": "gemma-3-270m", "messages": LONG, "max_tokens": max_tokens, "stream": True,
        "temperature": 0})


@pytest.fixture
def one_context(tmp_path: Path, fresh_server: list[ServerProcess]) -> ServerProcess:
    proc = ServerProcess(make_data_dir(tmp_path), ONE_CONTEXT).start()
    fresh_server.append(proc)
    return proc


def test_disconnect_stops_generation_and_frees_the_context(one_context: ServerProcess) -> None:
    before = pool(one_context)
    with one_context.client() as http, open_stream(one_context, http) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        received = [line for line, _ in zip(lines, range(4), strict=False)]
        assert len(received) == 4
        assert pool(one_context)["busy"] == 1
    # The client is gone: the worker must notice before its next token and give the context
    # back, far short of the 2000 tokens it was asked for.
    assert wait_for(lambda: pool(one_context)["busy"] == 0), pool(one_context)
    after = pool(one_context)
    assert after["cancelled"] == before["cancelled"] + 1
    assert after["tokens_generated"] - before["tokens_generated"] < 500
    # and the context is usable again
    with one_context.client() as http:
        reply = http.post("/v1/chat/completions", json={
            "model": "gemma-3-270m", "messages": LONG, "max_tokens": 3})
        assert reply.status_code == 200, reply.text


def test_full_queue_answers_503_with_retry_after(one_context: ServerProcess) -> None:
    client = openai.OpenAI(base_url=one_context.base_url, api_key=one_context.admin_key,
                           max_retries=0)
    waiting_result: dict[str, Any] = {}
    with one_context.client() as http, open_stream(one_context, http) as holder:
        lines = holder.iter_lines()  # keep it: a dropped iterator closes the connection
        assert next(lines)  # the only context is now generating

        def queued() -> None:  # waits in the queue (queue_size = 1) until the holder ends
            reply = client.chat.completions.create(model="gemma-3-270m", messages=LONG,
                                                   max_tokens=2)
            waiting_result["finish"] = reply.choices[0].finish_reason

        thread = threading.Thread(target=queued)
        thread.start()
        assert wait_for(lambda: pool(one_context)["waiting"] == 1)
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="gemma-3-270m", messages=LONG, max_tokens=2)
        assert info.value.status_code == 503
        assert info.value.code == "queue_full"
        assert int(info.value.response.headers["retry-after"]) >= 1
    # leaving the holder's stream frees the context for the queued request (FIFO)
    thread.join(60)
    assert waiting_result.get("finish") in ("stop", "length")
    assert pool(one_context)["rejected"] == 1


def test_sigterm_lets_inflight_stream_finish_then_exits_0(one_context: ServerProcess) -> None:
    with one_context.client() as http, open_stream(one_context, http, max_tokens=60) as stream:
        lines = stream.iter_lines()
        assert next(lines)
        assert one_context.proc is not None
        one_context.proc.send_signal(signal.SIGTERM)
        # New connections are refused while the stream drains ...
        assert wait_for(lambda: _refused(one_context.url), timeout=10)
        rest = [line for line in lines if line]
    # ... and the stream ran to its end.
    assert rest[-1] == "data: [DONE]"
    final = json.loads(rest[-2][len("data: "):])
    assert final["choices"][0]["finish_reason"] in ("stop", "length")
    assert one_context.wait_exit(30) == 0


def _refused(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=1)
    except httpx.TransportError:
        return True
    return False


def test_sigterm_grace_period_cuts_streams_that_run_too_long(
        tmp_path: Path, fresh_server: list[ServerProcess]) -> None:
    proc = ServerProcess(make_data_dir(tmp_path),
                         ONE_CONTEXT + "[server]\nshutdown_grace_seconds = 1\n").start()
    fresh_server.append(proc)
    with proc.client() as http, open_stream(proc, http, max_tokens=3000) as stream:
        lines = stream.iter_lines()
        assert next(lines)
        assert proc.proc is not None
        started = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        with pytest.raises(httpx.HTTPError):
            for _ in lines:
                pass
    assert proc.wait_exit(30) == 0
    assert time.monotonic() - started < 20


def test_client_timeout_on_a_whole_answer_stops_generation(one_context: ServerProcess) -> None:
    before = pool(one_context)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(one_context.url + "/v1/chat/completions", timeout=1.5,
                   headers={"authorization": f"Bearer {one_context.admin_key}"},
                   json={"model": "gemma-3-270m", "messages": LONG, "max_tokens": 2000,
                         "temperature": 0})
    assert wait_for(lambda: pool(one_context)["busy"] == 0), pool(one_context)
    after = pool(one_context)
    assert after["cancelled"] == before["cancelled"] + 1
    assert after["tokens_generated"] - before["tokens_generated"] < 500
