"""The pipeline's order of steps, with a fake provider: settlement and audit happen before a
stream says [DONE], and a stream cut short is settled with what it had generated."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.config import LimitsConfig
from appliance.errors import AuthenticationFailed, ModelNotFound
from appliance.http.responses import sse_events
from appliance.keys import KeyStore
from appliance.pipeline import Pipeline, RequestContext
from appliance.providers.base import ModelInfo, Provider
from appliance.routing import Router
from appliance.state import StateDB
from appliance.types import Delta, Generation, GenerationRequest, Usage


class FakeProvider(Provider):
    name = "fake"
    zone = "site"

    def models(self) -> list[ModelInfo]:
        return [ModelInfo("fake-model", "chat", "test")]

    async def generate(self, request: GenerationRequest) -> Generation:
        return Generation("hello", "stop", Usage(3, 1), "fake-model")

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        for i in range(1, 6):
            yield Delta(f"t{i}", "length" if i == 5 else None, Usage(3, i))


class RecordingPipeline(Pipeline):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.events: list[str] = []

    async def settle(self, ctx: RequestContext, usage: Usage | None) -> None:
        self.events.append(f"settle:{usage.completion_tokens if usage else None}")

    async def audit(self, ctx: RequestContext) -> None:
        self.events.append(f"audit:{ctx.status}")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[RecordingPipeline, str]:
    keys = KeyStore(StateDB(tmp_path / "state.db"), b"\x00" * 32)
    plaintext, _ = keys.create("admin", role="admin")
    return RecordingPipeline(keys, Router([FakeProvider()]), LimitsConfig()), plaintext


def body(stream: bool) -> bytes:
    return json.dumps({"model": "fake-model", "stream": stream,
                       "messages": [{"role": "user", "content": "x"}]}).encode()


def test_whole_answer_settles_then_audits(setup: tuple[RecordingPipeline, str]) -> None:
    pipeline, key = setup
    ctx = RequestContext("r1")
    _, result = asyncio.run(pipeline.run_generation(ctx, f"Bearer {key}", body(False), "chat"))
    assert isinstance(result, Generation)
    assert pipeline.events == ["settle:1", "audit:200"]
    assert pipeline.respond(ctx)["x-appliance-route"] == "fake/fake-model"


def test_stream_settles_and_audits_before_done(setup: tuple[RecordingPipeline, str]) -> None:
    pipeline, key = setup

    async def run() -> list[str]:
        ctx = RequestContext("r2")
        request, deltas = await pipeline.run_generation(ctx, f"Bearer {key}", body(True), "chat")
        assert not isinstance(deltas, Generation)
        first = await deltas.__anext__()
        seen = []
        async for event in sse_events(request, "fake-model", first, deltas, "id"):
            seen.append("DONE" if event == b"data: [DONE]\n\n" else "chunk")
            if seen[-1] == "DONE":
                seen.extend(pipeline.events)
        return seen

    seen = asyncio.run(run())
    assert seen[-3:] == ["DONE", "settle:5", "audit:200"]


def test_stream_cut_short_is_settled_with_what_was_generated(
        setup: tuple[RecordingPipeline, str]) -> None:
    pipeline, key = setup

    async def run() -> None:
        ctx = RequestContext("r3")
        request, deltas = await pipeline.run_generation(ctx, f"Bearer {key}", body(True), "chat")
        assert not isinstance(deltas, Generation)
        first = await deltas.__anext__()
        events = sse_events(request, "fake-model", first, deltas, "id")
        for _ in range(3):  # role chunk, t1, t2: then the client goes away
            await events.__anext__()
        await events.aclose()  # type: ignore[attr-defined]

    asyncio.run(run())
    assert pipeline.events == ["settle:2", "audit:200"]


def test_refusals_are_audited(setup: tuple[RecordingPipeline, str]) -> None:
    pipeline, key = setup
    with pytest.raises(AuthenticationFailed):
        asyncio.run(pipeline.run_generation(RequestContext("r4"), "Bearer nope", body(False),
                                            "chat"))
    wrong = json.dumps({"model": "other", "messages": [{"role": "user", "content": "x"}]})
    with pytest.raises(ModelNotFound):
        asyncio.run(pipeline.run_generation(RequestContext("r5"), f"Bearer {key}",
                                            wrong.encode(), "chat"))
    assert pipeline.events == ["settle:None", "audit:401", "settle:None", "audit:404"]
