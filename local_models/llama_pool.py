"""A pool of llama.cpp contexts behind a bounded, first-come-first-served queue.

One llama.cpp context is not thread-safe, so each request holds a context for the whole of
its generation. Generation runs in a dedicated thread per context and hands each token to the
event loop as soon as it is sampled, so streaming is token by token. The consumer can stop a
generation at any time (client disconnect): the worker checks a flag before every token step
and gives the context back to the pool right away.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import random
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_models.chat_formats import ChatTurn, FormattedPrompt, get_chat_format
from local_models.stopping import StopScanner


class QueueFull(Exception):
    """Every context is busy and the waiting line is at its limit."""


@dataclass(frozen=True, slots=True)
class LlamaSettings:
    model_path: Path
    context_length: int
    threads: int
    gpu_layers: int
    batch_size: int
    pool_size: int
    queue_size: int
    chat_format: str


@dataclass(slots=True)
class GenerateParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: Sequence[str] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


@dataclass(slots=True)
class TokenEvent:
    """Text released by one token step with the token counts so far; the last event has
    ``finish_reason`` set."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(slots=True)
class PoolStats:
    size: int = 0
    busy: int = 0
    waiting: int = 0
    completed: int = 0
    cancelled: int = 0
    rejected: int = 0
    tokens_generated: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


class LlamaPool:
    def __init__(self, settings: LlamaSettings) -> None:
        self.settings = settings
        self._format = get_chat_format(settings.chat_format)
        self._contexts: list[Any] = []
        self._free: list[Any] = []
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._executor: ThreadPoolExecutor | None = None
        self._stats = PoolStats(size=settings.pool_size)
        self._eog: Callable[[int], bool] | None = None
        #: Guards _free and _waiters: workers release contexts from their own threads.
        self._lock = threading.Lock()

    # lifecycle ---------------------------------------------------------------------------

    def load(self) -> None:
        """Load the model and create the contexts (blocking: call it from a thread)."""
        import llama_cpp

        s = self.settings
        for _ in range(s.pool_size):
            ctx = llama_cpp.Llama(
                model_path=str(s.model_path), n_ctx=s.context_length, n_threads=s.threads,
                n_threads_batch=s.threads, n_gpu_layers=s.gpu_layers, n_batch=s.batch_size,
                verbose=False,
            )
            self._contexts.append(ctx)
        first = self._contexts[0]
        vocab = first._model.vocab
        self._eog = lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))
        self._free = list(self._contexts)
        self._executor = ThreadPoolExecutor(s.pool_size, thread_name_prefix="llama")

    @property
    def loaded(self) -> bool:
        return bool(self._contexts)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        for ctx in self._contexts:
            ctx.close()
        self._contexts.clear()
        self._free.clear()

    def stats(self) -> PoolStats:
        st = self._stats
        with self._lock:
            st.busy = len(self._contexts) - len(self._free)
            st.waiting = len(self._waiters)
        return st

    # prompts -----------------------------------------------------------------------------

    def format_chat(self, messages: Sequence[ChatTurn]) -> FormattedPrompt:
        return self._format(messages)

    def tokenize(self, prompt: FormattedPrompt | str) -> list[int]:
        """Tokens for a chat prompt (template parts as control tokens, content as text) or a
        plain completion prompt (all text)."""
        ctx = self._contexts[0]
        if isinstance(prompt, str):
            return list(ctx.tokenize(prompt.encode("utf-8"), add_bos=True, special=False))
        tokens: list[int] = []
        for i, seg in enumerate(prompt.segments):
            tokens += ctx.tokenize(seg.text.encode("utf-8"), add_bos=(i == 0),
                                   special=seg.template)
        return tokens

    # the queue ---------------------------------------------------------------------------

    async def _acquire(self) -> Any:
        with self._lock:
            if self._free and not self._waiters:
                return self._free.pop()
            if len(self._waiters) >= self.settings.queue_size:
                self._stats.rejected += 1
                raise QueueFull
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())  # handed over just as we gave up: pass it on
            raise

    def _release(self, ctx: Any) -> None:
        """Give a context to the longest waiter, or back to the free list. Safe from any
        thread: workers call it directly, so a context never depends on an event loop being
        alive to come back."""
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                try:
                    waiter.get_loop().call_soon_threadsafe(self._hand_over, waiter, ctx)
                    return
                except RuntimeError:  # the waiter's loop is closed: it waits no more
                    continue
            self._free.append(ctx)

    def _hand_over(self, waiter: asyncio.Future[Any], ctx: Any) -> None:
        if waiter.done():  # cancelled between being chosen and now
            self._release(ctx)
        else:
            waiter.set_result(ctx)

    # generation --------------------------------------------------------------------------

    async def generate(self, tokens: list[int], params: GenerateParams
                       ) -> AsyncGenerator[TokenEvent, None]:
        """Stream the answer to ``tokens``. Leaving the iteration early (or cancelling the task
        reading it) stops generation before the next token step."""
        ctx = await self._acquire()
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[TokenEvent | BaseException] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: TokenEvent | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, item)
            except RuntimeError:  # the consumer's loop is gone: nobody is listening
                cancel.set()

        assert self._executor is not None
        self._executor.submit(self._run, ctx, tokens, params, cancel, emit)
        finished = False
        try:
            while True:
                item = await events.get()
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                yield item
                if item.finish_reason is not None:
                    finished = True
                    return
        finally:
            if not finished:
                cancel.set()

    def _run(self, ctx: Any, tokens: list[int], params: GenerateParams, cancel: threading.Event,
             emit: Callable[[TokenEvent | BaseException], None]) -> None:
        """The worker thread: sample, detokenize, apply stops, hand over each piece."""
        assert self._eog is not None
        generated = 0
        finish = "length"
        last: TokenEvent | BaseException
        try:
            ctx.set_seed(params.seed if params.seed is not None else random.getrandbits(31))
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            scanner = StopScanner(params.stop)
            steps = ctx.generate(
                tokens, top_k=40, top_p=params.top_p, min_p=0.05, temp=params.temperature,
                repeat_penalty=1.0, presence_penalty=params.presence_penalty,
                frequency_penalty=params.frequency_penalty, reset=True)
            try:
                for token in steps:
                    if cancel.is_set():
                        finish = "cancelled"
                        break
                    if self._eog(token):
                        finish = "stop"
                        break
                    generated += 1
                    text = scanner.feed(decoder.decode(ctx.detokenize([token])))
                    if scanner.stopped:
                        finish = "stop"
                        if text:
                            emit(TokenEvent(text, None, len(tokens), generated))
                        break
                    if text:
                        emit(TokenEvent(text, None, len(tokens), generated))
                    if generated >= params.max_tokens:
                        break
            finally:
                steps.close()
            if finish == "cancelled":
                self._stats.cancelled += 1
                return
            tail = scanner.flush() + ("" if scanner.stopped else decoder.decode(b"", final=True))
            self._stats.completed += 1
            last = TokenEvent(tail, finish, len(tokens), generated)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            last = exc
        finally:
            self._stats.tokens_generated += generated
            # The context is free before the consumer hears "finished", so the next request
            # in line starts at once and the pool's counts agree with what clients saw.
            self._release(ctx)
        emit(last)
