"""The ``local`` provider: the quantized model on this box (zone ``device``).

It adapts ``local_models`` to the provider interface: formats and tokenizes the prompt, fits
``max_tokens`` to the context, runs generation on the llama.cpp pool and embeddings on the
MiniLM model, and maps their errors onto the appliance's exception tree.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from appliance.config import LimitsConfig
from appliance.errors import ContextLengthExceeded, Overloaded
from appliance.providers.base import Embeddings, ModelInfo, Provider
from appliance.types import Delta, EmbeddingRequest, Generation, GenerationRequest, Usage
from local_models.llama_pool import GenerateParams, LlamaPool, QueueFull

#: Seconds a client told "queue full" should wait before trying again.
RETRY_AFTER_QUEUE_FULL = 2.0


class LocalProvider(Provider):
    name = "local"
    zone = "device"

    def __init__(self, chat_model: str, pool: LlamaPool, embedding_model: str | None,
                 embedder: Any | None, limits: LimitsConfig) -> None:
        self.chat_model = chat_model
        self.pool = pool
        self.embedding_model = embedding_model
        self.embedder = embedder
        self.limits = limits

    def models(self) -> list[ModelInfo]:
        found = [ModelInfo(self.chat_model, "chat", "local",
                           self.pool.settings.context_length)]
        if self.embedding_model and self.embedder is not None:
            found.append(ModelInfo(self.embedding_model, "embedding", "local"))
        return found

    def ready(self) -> bool:
        return self.pool.loaded

    def _prepare(self, request: GenerationRequest) -> tuple[list[int], GenerateParams]:
        if request.messages is not None:
            prompt = self.pool.format_chat(request.messages)
            tokens = self.pool.tokenize(prompt)
            stops = list(request.sampling.stop) + list(prompt.stop)
            param = "messages"
        else:
            tokens = self.pool.tokenize(request.prompt or "")
            stops = list(request.sampling.stop)
            param = "prompt"
        n_ctx = self.pool.settings.context_length
        limit = min(n_ctx, self.limits.max_prompt_tokens or n_ctx)
        if len(tokens) >= limit:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {limit} tokens. However, your "
                f"{param} resulted in {len(tokens)} tokens.", param=param)
        room = n_ctx - len(tokens)
        wanted = request.sampling.max_tokens
        if wanted is not None and wanted > room:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {n_ctx} tokens. However, you "
                f"requested {len(tokens) + wanted} tokens ({len(tokens)} in the {param}, "
                f"{wanted} for the completion).", param="max_tokens")
        s = request.sampling
        params = GenerateParams(
            max_tokens=wanted if wanted is not None else min(room, self.limits.max_completion_tokens),
            temperature=1.0 if s.temperature is None else s.temperature,
            top_p=1.0 if s.top_p is None else s.top_p, stop=stops, seed=s.seed,
            presence_penalty=s.presence_penalty or 0.0,
            frequency_penalty=s.frequency_penalty or 0.0)
        return tokens, params

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        tokens, params = self._prepare(request)
        events = self.pool.generate(tokens, params)
        try:
            async for event in events:
                # Every delta carries the usage so far: a stream cut short is charged for what
                # was generated up to the last piece the client received.
                usage = Usage(event.prompt_tokens, event.completion_tokens)
                yield Delta(event.text, event.finish_reason, usage)  # type: ignore[arg-type]
        except QueueFull as exc:
            raise Overloaded("The local model is busy and its queue is full; retry shortly.",
                             retry_after=RETRY_AFTER_QUEUE_FULL) from exc
        finally:
            await events.aclose()

    async def generate(self, request: GenerationRequest) -> Generation:
        parts: list[str] = []
        async with contextlib.aclosing(self.stream(request)) as deltas:  # type: ignore[type-var]
            async for delta in deltas:
                parts.append(delta.text)
                if delta.finish_reason is not None:
                    assert delta.usage is not None
                    return Generation("".join(parts), delta.finish_reason, delta.usage,
                                      self.chat_model)
        raise RuntimeError("generation ended without a finish reason")

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        assert self.embedder is not None
        embedder = self.embedder
        vectors, counts = await asyncio.to_thread(
            lambda: (embedder.embed(request.inputs), embedder.count_tokens(request.inputs)))
        if request.encoding_format == "base64":
            data: list[Any] = [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
                               for v in vectors]
        else:
            data = vectors.tolist()
        return Embeddings(data, Usage(prompt_tokens=sum(counts)), request.model)
