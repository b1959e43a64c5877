"""Internal request and response types shared by the pipeline and the providers.

They are independent of any wire format: the OpenAI schema is parsed into them at the HTTP edge
and every provider adapter translates from and to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length"]


@dataclass(slots=True)
class Message:
    role: Role
    content: str


@dataclass(slots=True)
class SamplingParams:
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None


@dataclass(slots=True)
class GenerationRequest:
    """A chat (``messages``) or a plain completion (``prompt``) request."""

    model: str
    sampling: SamplingParams
    messages: list[Message] | None = None
    prompt: str | None = None
    stream: bool = False
    include_usage: bool = False
    user: str | None = None

    @property
    def is_chat(self) -> bool:
        return self.messages is not None


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(slots=True)
class Generation:
    """A finished, non-streamed answer."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    model: str


@dataclass(slots=True)
class Delta:
    """One piece of a streamed answer. The last one carries ``finish_reason``; ``usage`` is
    the total so far (on the last delta, the whole request's)."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


@dataclass(slots=True)
class EmbeddingRequest:
    model: str
    inputs: list[str]
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None
