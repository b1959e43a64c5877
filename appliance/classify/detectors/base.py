"""What every detector sees and promises.

Speed is the constraint here (< 50 microseconds per KB on one core), and a Python-level pass
over the text (a regex scan, a word split) costs about as much as that budget. So a ``Scan``
prepares the text once with the cheapest tools CPython has: one Latin-1 encoding, from which
``bytes.translate`` makes the word set (cut down to the ``Vocabulary`` that detectors and
context cues ask about) and the layout shape that gates test (see ``gates.py``). Each detector
declares ``Gate``s, necessary conditions for any finding, and is run only when one holds; it
then runs its regular expressions only where its trigger words, needles or anchor characters
occur, in windows around them where it can. ``re`` skips in C only to a pattern's first
literal or character class; a pattern that begins with a lookbehind or an alternation of
groups is tried at every position, so such patterns are rewritten to begin with a character
(``at_word_start``: labels, cues, tokens; ``test_skipping.py`` checks them against the old
forms) or tried only where they can begin (``match_at``, ``match_in_windows``: titles, URL
schemes, street suffixes), and patterns made of a few characters (card numbers,
IBANs, VINs, IP and MAC addresses) are searched only in long enough runs of them
(``Scan.runs``). Both give exactly what ``finditer`` gives; ``test_positioned.py`` checks the
lists of starts against the patterns and the runs against whole-text scans.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
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
_RUN_TABLES: dict[str, bytes] = {}
#: Texts shorter than this are searched whole rather than in runs (see ``Scan.runs``).
_SHORT_TEXT = 256


def run_table(characters: str) -> bytes:
    """Latin-1 byte -> ``1`` if in ``characters`` else ``0``, for ``bytes.translate``."""
    table = _RUN_TABLES.get(characters)
    if table is None:
        members = set(characters.encode("latin-1"))
        table = _RUN_TABLES[characters] = bytes(49 if b in members else 48 for b in range(256))
    return table


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

    __slots__ = ("_lowered", "_marks", "_positions", "gated", "has_digit", "raw", "shape",
                 "text", "words")

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
        #: ``marks`` by character set (filled on first use).
        self._marks: dict[str, bytes] = {}

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

    def marks(self, characters: str) -> bytes:
        """One byte per character: ``1`` where it is one of ``characters`` (Latin-1), else
        ``0`` (made once per set; the gates make their own, uncached, which on a short text
        costs less than the cache)."""
        marks = self._marks.get(characters)
        if marks is None:
            marks = self._marks[characters] = self.raw.translate(run_table(characters))
        return marks

    def runs(self, characters: str, length: int, reach: int = 0) -> list[tuple[int, int]]:
        """Merged ``(start, end)`` windows over every maximal run of at least ``length``
        characters from ``characters``, each reaching ``reach`` characters past the run (for
        a lookahead, or a tail of other characters): a pattern whose matches lie in such runs
        is searched only there, which on prose skips almost everything. The whole text when
        the scan is not ``gated`` (non-ASCII digits, which ``\\d`` matches, are not marked),
        and when it is short: then finding the runs costs more than ``re`` saves."""
        if not self.gated or len(self.text) < _SHORT_TEXT:
            return [(0, len(self.text))]
        marks, ones = self.marks(characters), b"1" * length
        size = len(marks)
        windows: list[tuple[int, int]] = []
        at = marks.find(ones)
        while at >= 0:
            end = marks.find(b"0", at + length)
            if end < 0:
                end = size
            if windows and at <= windows[-1][1]:
                windows[-1] = (windows[-1][0], min(size, end + reach))
            else:
                windows.append((at, min(size, end + reach)))
            at = marks.find(ones, end)
        return windows

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
    #: Holds for the scan (the costliest test, made last): e.g. the detector's own first step,
    #: whose result it finds again in the ``Scan``'s caches when it runs.
    check: Callable[[Scan], bool] | None = None
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


def occurrences(haystack: str, needles: Iterable[str]) -> list[int]:
    """Every start of any of ``needles`` in ``haystack``, sorted and without repeats: the only
    places where a pattern that begins with one of them can match, so that it is tried there
    (``match_at``) instead of at every position, as ``finditer`` does for a pattern without a
    first literal or character class."""
    found: set[int] = set()
    for needle in needles:
        at = haystack.find(needle)
        while at >= 0:
            found.add(at)
            at = haystack.find(needle, at + 1)
    return sorted(found)


def match_at(pattern: re.Pattern[str], text: str, starts: Iterable[int], end: int | None = None
             ) -> Iterator[re.Match[str]]:
    """The matches ``pattern.finditer(text, ..., end)`` would give, when every match must
    start at one of ``starts`` (sorted): each start is tried in turn, skipping those inside
    the previous match, as ``finditer`` does. The pattern must not match the empty string."""
    last_end = 0
    stop = len(text) if end is None else end
    for start in starts:
        if start < last_end:
            continue
        match = pattern.match(text, start, stop)
        if match is not None:
            last_end = match.end()
            yield match


#: Below this many characters a window is searched with ``finditer``: a dozen ``str.find``
#: calls and a ``match`` per start cost more than ``re`` trying each position of it.
_SHORT_WINDOW = 300


def match_in_windows(pattern: re.Pattern[str], text: str, windows: Iterable[tuple[int, int]],
                     needles: Iterable[str], lowered: str | None = None,
                     whole_below: int | None = None) -> Iterator[re.Match[str]]:
    """The matches ``pattern.finditer(text, start, end)`` gives for each window, when every
    match must begin with one of ``needles``: a pattern that begins with a lookbehind gives
    ``re`` no character to skip to, and would be tried at each position of each window. (The
    needles are looked for in the windows only: short ones such as "ss" abound elsewhere; in
    ``lowered``, when given, a lower-cased ``text``.) Windows shorter than ``whole_below``
    (default ``_SHORT_WINDOW``) are searched whole: a pattern that fails fast at most
    positions costs less there than the ``find`` calls; one with a long alternation after its
    lookbehind passes 0."""
    needles = tuple(needles)
    within = text if lowered is None else lowered
    short = _SHORT_WINDOW if whole_below is None else whole_below
    for start, end in windows:
        if end - start < short:
            yield from pattern.finditer(text, start, end)
            continue
        found: set[int] = set()
        for needle in needles:
            at = within.find(needle, start, end)
            while at >= 0:
                found.add(at)
                at = within.find(needle, at + 1, end)
        if found:
            yield from match_at(pattern, text, sorted(found), end)


def at_word_start(alternatives: Iterable[str], not_after: str) -> str:
    """An alternation that matches exactly what ``(?<!{not_after})(?:a1|a2|...)`` matches,
    written so that ``re`` can skip to it. ``re`` tries a pattern that begins with a
    lookbehind, or with an alternative that begins with a group or a class (``[Pp]atient``:
    write ``Patient|patient``), at every position; one whose alternatives all begin with a
    plain character only where one of those characters stands. So each alternative must begin
    with a plain character (``test_positioned.py`` holds the patterns to this); they are
    grouped by it, in the order given within each group (alternatives with different first
    characters never match at the same place), and the lookbehind comes after it, reaching
    one character further back: ``m(?<![\\w-].)(?:rn|edical)``."""
    groups: dict[str, list[str]] = {}
    for alternative in alternatives:
        first, rest = alternative[:1], alternative[1:]
        if not (first.isalnum() or first in "#/") or rest[:1] in ("?", "*", "+", "{"):
            raise ValueError(f"{alternative!r} does not begin with a plain character")
        groups.setdefault(first, []).append(rest)
    return "|".join(f"{first}(?<!{not_after}.)(?:{'|'.join(rests)})"
                    for first, rests in groups.items())


def words(*items: str) -> frozenset[str]:
    return frozenset(items)


def spans(pattern: re.Pattern[str], text: str, group: int | str = 0
          ) -> Iterator[tuple[int, int, re.Match[str]]]:
    for match in pattern.finditer(text):
        yield match.start(group), match.end(group), match
