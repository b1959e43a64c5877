"""Chat formats: turn a conversation into the prompt a model was trained on.

A formatted prompt is a list of segments, each marked as template or content. Template text is
tokenized with special tokens enabled (``<start_of_turn>`` becomes one control token); content
from the client is tokenized with them disabled, so a user who types ``<end_of_turn>`` cannot
forge a turn boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


class ChatTurn(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    template: bool


@dataclass(frozen=True, slots=True)
class FormattedPrompt:
    segments: tuple[Segment, ...]
    #: Text that ends the model's turn if the model writes it as plain text.
    stop: tuple[str, ...]


def format_gemma(messages: Sequence[ChatTurn]) -> FormattedPrompt:
    """Gemma's turns. Gemma has no system role; like Google's own template, the system text
    goes at the start of the first user turn."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    segments: list[Segment] = []
    pending_system = system
    for message in messages:
        if message.role == "system":
            continue
        role = "model" if message.role == "assistant" else "user"
        segments.append(Segment(f"<start_of_turn>{role}\n", True))
        if role == "user" and pending_system:
            segments.append(Segment(pending_system + "\n\n", False))
            pending_system = ""
        segments.append(Segment(message.content, False))
        segments.append(Segment("<end_of_turn>\n", True))
    if pending_system:  # only system messages were given
        segments += [Segment("<start_of_turn>user\n", True), Segment(pending_system, False),
                     Segment("<end_of_turn>\n", True)]
    segments.append(Segment("<start_of_turn>model\n", True))
    return FormattedPrompt(tuple(segments), stop=("<end_of_turn>",))


def format_chatml(messages: Sequence[ChatTurn]) -> FormattedPrompt:
    """ChatML (Qwen, many fine-tunes): ``<|im_start|>role ... <|im_end|>``."""
    segments: list[Segment] = []
    for message in messages:
        segments.append(Segment(f"<|im_start|>{message.role}\n", True))
        segments.append(Segment(message.content, False))
        segments.append(Segment("<|im_end|>\n", True))
    segments.append(Segment("<|im_start|>assistant\n", True))
    return FormattedPrompt(tuple(segments), stop=("<|im_end|>",))


CHAT_FORMATS: dict[str, Callable[[Sequence[ChatTurn]], FormattedPrompt]] = {
    "gemma": format_gemma,
    "chatml": format_chatml,
}


def get_chat_format(name: str) -> Callable[[Sequence[ChatTurn]], FormattedPrompt]:
    try:
        return CHAT_FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(CHAT_FORMATS))
        raise ValueError(f"unknown chat format {name!r}; known: {known}") from None
