"""What every detector sees and promises.

Speed is the constraint here (< 50 microseconds per KB on one core), and a Python-level pass
over the text (a regex scan, a word split) costs about as much as that budget. So a ``Scan``
prepares the text once with the cheapest tools CPython has: one ``str.lower``, and a word set
made by ``bytes.translate`` + ``split`` and cut down to the ``Vocabulary`` that detectors and
context cues ask about. A detector then runs its regular expressions only when one of its
trigger words, needles (``in`` checks) or anchor characters occurs, and where it can, only
in windows around them. Every pattern starts with a literal or a character class so that
``re`` can skip to candidate positions in C.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Protocol

from appliance.classify.findings import Finding

_DIGIT = re.compile(r"[0-9]")
#: ``str.lower`` changes the length of a few characters (e.g. U+0130); spans must match.
_ASCII_LOWER = str.maketrans({chr(c): chr(c + 32) for c in range(65, 91)}
                             | {"Ä": "ä", "Ö": "ö", "Ü": "ü"})
#: Latin-1 bytes to word bytes, the same words as ``[a-zäöüß]+`` over the lowered text: ASCII
#: letters and umlauts lowered, every other byte (digits, punctuation, other accented letters)
#: a separator; characters beyond Latin-1 are encoded as "?", a separator too.
_WORD_BYTES = bytes(b + 32 if 65 <= b <= 90 or b in (0xC4, 0xD6, 0xDC)
                    else b if 97 <= b <= 122 or b in (0xE4, 0xF6, 0xFC, 0xDF) else 32
                    for b in range(256))


def _word_bytes(text: str) -> bytes:
    return text.encode("latin-1", "replace").translate(_WORD_BYTES)


class Vocabulary:
    """The words that anyone asks about (detector triggers, context cues), found in a text as
    whole words with C-level passes (encode, translate, split) instead of a regex word split,
    which alone would cost most of the time budget."""

    def __init__(self, words: Iterable[str]) -> None:
        self._by_key = {_word_bytes(word): word for word in words}
        self._keys = frozenset(self._by_key)

    def present(self, text: str) -> frozenset[str]:
        """The vocabulary words that occur in ``text`` as words."""
        found = self._keys.intersection(_word_bytes(text).split())
        if not found:
            return frozenset()
        by_key = self._by_key
        return frozenset([by_key[key] for key in found])


class Scan:
    """One text, prepared once for all detectors (a plain class: a frozen dataclass's
    ``__init__`` alone would cost a tenth of the time budget of a short prompt)."""

    __slots__ = ("_positions", "has_digit", "lowered", "text", "words")

    def __init__(self, text: str, lowered: str, words: frozenset[str], has_digit: bool
                 ) -> None:
        self.text = text
        #: Same length as ``text``, so spans found in it are spans in ``text``.
        self.lowered = lowered
        #: The vocabulary words that occur in the text, for trigger checks and context cues.
        self.words = words
        self.has_digit = has_digit
        #: Where each trigger word or needle occurs in ``lowered`` (filled on first use).
        self._positions: dict[str, list[int]] = {}

    @classmethod
    def of(cls, text: str, vocabulary: Vocabulary) -> Scan:
        lowered = text.lower()
        if len(lowered) != len(text):
            lowered = text.translate(_ASCII_LOWER)
        return cls(text, lowered, vocabulary.present(text), _DIGIT.search(text) is not None)

    def any_word(self, words: frozenset[str]) -> bool:
        return not self.words.isdisjoint(words)

    def positions(self, needle: str) -> list[int]:
        """Every start of ``needle`` in the lowered text (inside longer words too)."""
        found = self._positions.get(needle)
        if found is None:
            found = []
            lowered = self.lowered
            at = lowered.find(needle)
            while at >= 0:
                found.append(at)
                at = lowered.find(needle, at + 1)
            self._positions[needle] = found
        return found

    def windows(self, triggers: frozenset[str], before: int, after: int,
                needles: tuple[str, ...] = ()) -> list[tuple[int, int]]:
        """Merged ``(start, end)`` ranges around every occurrence of the trigger words that
        the text contains, and of ``needles`` (lower-case substrings, for labels that are not
        words such as "s/n"): a detector searches only there instead of the whole text."""
        words = self.words
        present = () if words.isdisjoint(triggers) else words & triggers
        if needles:
            lowered = self.lowered
            needles = tuple(n for n in needles if n in lowered)
        if not present and not needles:
            return []
        spans: list[tuple[int, int]] = []
        for word in (*present, *needles):
            size = len(word) + after
            spans.extend((at - before if at > before else 0, at + size)
                         for at in self.positions(word))
        if len(spans) == 1:
            return spans
        spans.sort()
        merged = [spans[0]]
        for start, end in spans[1:]:
            last_start, last_end = merged[-1]
            if start <= last_end:
                if end > last_end:
                    merged[-1] = (last_start, end)
            else:
                merged.append((start, end))
        return merged

    def before(self, start: int, width: int) -> str:
        """The lowered text just before ``start``: where labels such as "MRN:" stand."""
        return self.lowered[max(0, start - width):start]


class Detector(Protocol):
    """Finds one family of identifiers. ``types`` lists what it may report, so that a
    detector whose types are all disabled in config is never built; ``triggers`` lists the
    words it looks for in ``Scan.words`` (the classifier builds its vocabulary from them)."""

    types: frozenset[str]
    triggers: frozenset[str]

    def find(self, scan: Scan) -> Iterable[Finding]: ...


def words(*items: str) -> frozenset[str]:
    return frozenset(items)


def spans(pattern: re.Pattern[str], text: str, group: int | str = 0
          ) -> Iterator[tuple[int, int, re.Match[str]]]:
    for match in pattern.finditer(text):
        yield match.start(group), match.end(group), match
