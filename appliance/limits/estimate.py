"""Prompt token estimates for reservations, before any upstream call.

Three families, chosen by model name:

- OpenAI models: tiktoken with the encoding the model uses (``o200k_base`` for gpt-4o, gpt-4.1,
  gpt-5, o1/o3/o4; ``cl100k_base`` for gpt-4 and gpt-3.5), built offline from the installed
  catalog artifacts, plus OpenAI's documented chat overhead: 3 tokens per message, 1 more per
  ``name``, 3 for the reply priming. This matches what OpenAI bills for text messages.
- Local GGUF models: the model's own tokenizer, registered by the runtime (``register_local``)
  because only it holds the loaded model.
- Anything else (Anthropic, Gemini, site models with unknown vocabularies): UTF-8 bytes / 3,
  times a 1.2 safety margin, rounded up, plus 4 tokens per chat message and 3 for priming.
  BPE vocabularies of current models average 3.5 to 4.5 bytes per token on English and code,
  so this over-estimates them by roughly 40-80%; dense scripts (CJK: about 3 bytes per
  token) are still covered by the margin. Over-estimating only holds a little more budget
  until settlement gives the difference back; under-estimating could let a request run that
  the budget cannot pay for. Digit- or symbol-dense text can come closer to 1 byte per token
  than that margin covers; ``limits_policy.approx_bytes_per_token = 1`` makes the estimate a
  hard upper bound (a byte-level BPE, or SentencePiece with byte fallback, never makes more
  tokens than the text has UTF-8 bytes), at the price of reserving 3-4 times the tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import tiktoken

#: (name prefix, encoding); the first match wins, so the o200k models that share the
#: ``gpt-4`` prefix come first.
OPENAI_ENCODINGS: tuple[tuple[str, str], ...] = (
    ("gpt-4o", "o200k_base"), ("chatgpt-4o", "o200k_base"), ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"), ("gpt-5", "o200k_base"), ("o1", "o200k_base"),
    ("o3", "o200k_base"), ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"), ("gpt-3.5", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"), ("text-embedding-ada-002", "cl100k_base"),
)
OPENAI_TOKENS_PER_MESSAGE = 3
OPENAI_TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
APPROX_BYTES_PER_TOKEN = 3
APPROX_MARGIN = 1.2
APPROX_TOKENS_PER_MESSAGE = 4


class ChatMessage(Protocol):
    """What the estimator reads of a message (``appliance.types.Message`` fits)."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


TextCounter = Callable[[str], int]
ChatCounter = Callable[[list[ChatMessage]], int]


def openai_encoding_for(model: str) -> str | None:
    """The tiktoken encoding of an OpenAI model name (``openai/gpt-4o`` too), or None."""
    name = model.rsplit("/", 1)[-1].lower()
    for prefix, encoding in OPENAI_ENCODINGS:
        if name.startswith(prefix):
            return encoding
    return None


def approximate_tokens(text: str, bytes_per_token: float = APPROX_BYTES_PER_TOKEN / APPROX_MARGIN
                       ) -> int:
    """UTF-8 bytes / ``bytes_per_token`` (default 3 / 1.2 = 2.5), rounded up (see the module
    docstring for why)."""
    return math.ceil(len(text.encode("utf-8")) / bytes_per_token - 1e-9)


class TokenEstimator:
    """Counts prompt tokens per model family. Encodings are built on first use (about a
    second for o200k_base); call ``preload()`` at startup to keep that off a request."""

    def __init__(self, models_dir: Path | None,
                 approx_bytes_per_token: float = APPROX_BYTES_PER_TOKEN / APPROX_MARGIN) -> None:
        self._models_dir = models_dir
        self._approx_bytes = approx_bytes_per_token
        self._encodings: dict[str, tiktoken.Encoding] = {}
        self._local_text: dict[str, TextCounter] = {}
        self._local_chat: dict[str, ChatCounter] = {}
        #: Tokens of each role's name by encoding: a handful of values, counted once.
        self._role_tokens: dict[tuple[str, str], int] = {}

    def register_local(self, model: str, count_text: TextCounter,
                       count_chat: ChatCounter | None = None) -> None:
        """Count ``model`` with its own tokenizer. ``count_chat``, when given, counts a whole
        formatted conversation (chat template included); otherwise contents are summed plus
        the approximate per-message overhead."""
        self._local_text[model] = count_text
        if count_chat is not None:
            self._local_chat[model] = count_chat

    def preload(self, names: Iterable[str] = ("cl100k_base", "o200k_base")) -> None:
        for name in names:
            self._encoding(name)

    def _encoding(self, name: str) -> tiktoken.Encoding:
        encoding = self._encodings.get(name)
        if encoding is None:
            from local_models.tiktoken_encodings import load_encoding

            if self._models_dir is None:
                raise RuntimeError("TokenEstimator has no models directory for tiktoken")
            encoding = load_encoding(name, self._models_dir / name / f"{name}.tiktoken")
            self._encodings[name] = encoding
        return encoding

    def estimate_text(self, model: str, text: str) -> int:
        counter = self._local_text.get(model)
        if counter is not None:
            return counter(text)
        name = openai_encoding_for(model)
        if name is not None:
            # encode_ordinary: a client's "<|endoftext|>" is text to count, not a special token
            return len(self._encoding(name).encode_ordinary(text))
        return approximate_tokens(text, self._approx_bytes)

    def estimate_chat(self, model: str, messages: Iterable[ChatMessage]) -> int:
        messages = list(messages)
        chat = self._local_chat.get(model)
        if chat is not None:
            return chat(messages)
        text = self._local_text.get(model)
        name = None if text is not None else openai_encoding_for(model)
        if name is not None:
            encode = self._encoding(name).encode_ordinary
            total = REPLY_PRIMING
            for message in messages:
                total += (OPENAI_TOKENS_PER_MESSAGE + self._role(name, message.role, encode)
                          + len(encode(message.content)))
                who = getattr(message, "name", None)
                if who:
                    total += OPENAI_TOKENS_PER_NAME + len(encode(who))
            return total
        count = text or (lambda part: approximate_tokens(part, self._approx_bytes))
        total = REPLY_PRIMING
        for message in messages:
            total += APPROX_TOKENS_PER_MESSAGE + count(message.role) + count(message.content)
            who = getattr(message, "name", None)
            if who:
                total += 1 + count(who)
        return total

    def _role(self, encoding: str, role: str, encode: Callable[[str], list[int]]) -> int:
        """Tokens of a role's name, counted once per encoding (the schema admits four roles;
        the cache is bounded all the same)."""
        tokens = self._role_tokens.get((encoding, role))
        if tokens is None:
            tokens = len(encode(role))
            if len(self._role_tokens) < 64:
                self._role_tokens[(encoding, role)] = tokens
        return tokens
