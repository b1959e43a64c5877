"""Stop sequences over streamed text.

Text is released as soon as it can no longer be the start of a stop sequence, so a stream is
never more than (longest stop - 1) characters behind the model and a stop sequence split across
tokens is still caught and never shown to the client.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopScanner:
    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Add generated text; return what may be shown now. Sets ``stopped`` when a stop
        sequence appeared (the returned text ends right before it)."""
        if self.stopped:
            return ""
        buffer = self._held + text
        if not self._stops:
            self._held = ""
            return buffer
        cut = min((i for i in (buffer.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return buffer[:cut]
        keep = 0
        for stop in self._stops:
            for length in range(min(len(stop) - 1, len(buffer)), keep, -1):
                if buffer.endswith(stop[:length]):
                    keep = length
                    break
        self._held = buffer[len(buffer) - keep:] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """The generation ended without a stop: release what was held back."""
        held, self._held = self._held, ""
        return "" if self.stopped else held
