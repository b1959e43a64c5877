"""What every detector sees and promises.

Speed is the constraint here (< 50 microseconds per KB on one core), and a Python-level pass
over the text (a regex scan, a word split) costs about as much as that budget. So a ``Scan``
prepares the text once with the cheapest tools CPython has: one Latin-1 encoding, from which
``bytes.translate`` makes the word set (cut down to the ``Vocabulary`` that detectors and
context cues ask about) and the layout shape that gates test (see ``gates.py``). Each detector
declares ``Gate``s, necessary conditions for any finding, and is run only when one holds; it
then runs its regular expressions only where its trigger words, needles or anchor characters
occur, in windows around them where it can. Every pattern starts with a literal or a
character class so that ``re`` can skip to candidate positions in C.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from appliance.classify.findings import Finding

#: ``str.lower`` changes the length of a few characters (e.g. U+0130); spans must match.
_ASCII_LOWER = str.maketrans({chr(c): chr(c + 32) for c in range(65, 91)}
                             | {"Ä": "ä", "Ö": "ö", "Ü": "ü"})
#: Latin-1 bytes to word bytes, the same words as ``[a-zäöüß]+`` over the lowered text: ASCII
#: letters and umlauts lowered, every other byte (digits, punctuation, other accented letters)
#: a separator; characters beyond Latin-1 are encoded as "?", a separator too.
_WORD_BYTES = bytes(b + 32 if 65 <= b <= 90 or b in (0xC4, 0xD6, 0xDC)
                    else b if 97 <= b <= 122 or b in (0xE4, 0xF6, 0xFC, 0xDF) else 32
                    for b in range(256))
#: Latin-1 byte -> layout class (see ``gates.py``): digit ``0``, ASCII capital ``A``, other
#: letter ``a``, space or tab `` ``; anything else stands for itself.
_SHAPE_BYTES = bytes(48 if 48 <= b <= 57 else 65 if 65 <= b <= 90
                     else 97 if 97 <= b <= 122 or (b >= 0xC0 and b not in (0xD7, 0xF7))
                     else 32 if b in (9, 32) else b
                     for b in range(256))
#: A decimal digit outside ASCII ("٣", "３"): ``\d`` in the detectors' patterns matches it,
#: the Latin-1 shapes cannot show it, so such a text is not gated.
_NON_ASCII_DIGIT = re.compile(r"[^\x00-\x7f](?<=\d)")


def _latin1(text: str) -> tuple[bytes, bool]:
    """The text as Latin-1 bytes, one byte per character ("?" for the others), and whether
    it holds a non-ASCII decimal digit."""
    try:
        return text.encode("latin-1"), False
    except UnicodeEncodeError:
        return (text.encode("latin-1", "replace"),
                _NON_ASCII_DIGIT.search(text) is not None)


def _word_bytes(text: str) -> bytes:
    return text.encode("latin-1", "replace").translate(_WORD_BYTES)


class Vocabulary:
    """The words that anyone asks about (detector triggers, context cues), found in a text as
    whole words with C-level passes (encode, translate, split) instead of a regex word split,
    which alone would cost most of the time budget."""

    def __init__(self, words: Iterable[str]) -> None:
        self._by_key = {_word_bytes(word): word for word in words}
        self._keys = frozenset(self._by_key)

    def present(self, raw: bytes) -> frozenset[str]:
        """The vocabulary words that occur as words in ``raw``, a text encoded as Latin-1."""
        found = self._keys.intersection(raw.translate(_WORD_BYTES).split())
        if not found:
            return frozenset()
        by_key = self._by_key
        return frozenset([by_key[key] for key in found])


class Scan:
    """One text, prepared once for all gates and detectors (a plain class: a frozen
    dataclass's ``__init__`` alone would cost a tenth of the time budget of a short prompt)."""

    __slots__ = ("_lowered", "_positions", "gated", "has_digit", "raw", "shape", "text",
                 "words")

    def __init__(self, text: str, raw: bytes, words: frozenset[str], gated: bool) -> None:
        self.text = text
        #: The text as Latin-1, one byte per character ("?" for characters beyond it).
        self.raw = raw
        #: The layout class of each character (see ``gates.py``).
        self.shape = raw.translate(_SHAPE_BYTES).decode("latin-1")
        #: The vocabulary words that occur in the text, for trigger checks and context cues.
        self.words = words
        #: Whether an ASCII digit occurs.
        self.has_digit = "0" in self.shape
        #: False when the shapes cannot stand for the text (see ``_NON_ASCII_DIGIT``): then
        #: every detector runs.
        self.gated = gated
        self._lowered: str | None = None
        #: Where each trigger word or needle occurs in ``lowered`` (filled on first use).
        self._positions: dict[str, list[int]] = {}

    @classmethod
    def of(cls, text: str, vocabulary: Vocabulary) -> Scan:
        raw, exotic_digits = _latin1(text)
        return cls(text, raw, vocabulary.present(raw), not exotic_digits)

    @property
    def lowered(self) -> str:
        """The text in lower case, same length as ``text``, so that spans found in it are
        spans in ``text`` (made on first use)."""
        lowered = self._lowered
        if lowered is None:
            text = self.text
            lowered = text.lower()
            if len(lowered) != len(text):
                lowered = text.translate(_ASCII_LOWER)
            self._lowered = lowered
        return lowered

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


@dataclass(frozen=True, slots=True)
class Gate:
    """A necessary condition for a finding: every non-empty field must hold (AND); within a
    field one item suffices (OR). ``Gate()`` always holds. A detector with several gates runs
    when any of them holds."""

    #: An ASCII digit somewhere in the text.
    digit: bool = False
    #: One of these vocabulary words (lower case) occurs as a word.
    words: frozenset[str] = frozenset()
    #: One of these occurs in the text as written (case-sensitive).
    needles: tuple[str, ...] = ()
    #: One of these occurs in the lower-cased text.
    lowered: tuple[str, ...] = ()
    #: One of these occurs in ``Scan.shape`` (see ``gates.py``).
    layouts: tuple[str, ...] = ()
    #: ``(characters, n)``: a run of at least ``n`` characters, all from ``characters``.
    run: tuple[str, int] | None = None
    #: Matches somewhere in the lower-cased text (the costliest test, made last).
    pattern: re.Pattern[str] | None = None
    #: The field whose items are tested for all gates at once to pick the candidates (see
    #: ``Gates``): by default the first of ``needles``, ``lowered``, ``words``, ``layouts``
    #: that is set.
    key: str = ""


class Detector(Protocol):
    """Finds one family of identifiers. ``types`` lists what it may report, so that a
    detector whose types are all disabled in config is never built; ``triggers`` lists the
    words it looks for in ``Scan.words`` (the classifier builds its vocabulary from them);
    ``gates`` say when it can find anything at all (it runs only when one of them holds)."""

    types: frozenset[str]
    triggers: frozenset[str]

    @property
    def gates(self) -> tuple[Gate, ...]: ...

    def find(self, scan: Scan) -> Iterable[Finding]: ...


def words(*items: str) -> frozenset[str]:
    return frozenset(items)


def spans(pattern: re.Pattern[str], text: str, group: int | str = 0
          ) -> Iterator[tuple[int, int, re.Match[str]]]:
    for match in pattern.finditer(text):
        yield match.start(group), match.end(group), match
