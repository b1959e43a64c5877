"""Searching only where a match can be changes speed, never findings.

Detectors try some patterns only at the places where they can begin (``match_at``: URL
schemes, street suffixes, titles) and search others only inside runs of the characters they are
made of (``Scan.runs``). Both are exact only if the lists of starts are complete and the runs
hold every match; this file checks the lists against the patterns themselves (by spelling out
how each pattern's matches can begin, from ``re``'s own parse) and the runs against a scan of
the whole text.
"""

import random
import re
from collections.abc import Callable
from typing import Any
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]

import pytest

from appliance.classify import Classifier
from appliance.classify.detectors import Scan, base, build_detectors
from appliance.classify.detectors.addresses import _DE_ANCHOR, _DE_NEEDLES
from appliance.classify.detectors.base import match_at, occurrences
from appliance.classify.detectors.network import UrlDetector
from appliance.classify.detectors.people import _STARTS, NameDetector
from appliance.classify.config import ClassifyConfig
from tests.appliance.classify.test_gates import _PALETTE, _texts

_UNSPELLED = "\x00"  # stands for a character class that is not spelled out (\w, [^...])


def _beginnings(pattern: str, go_on: Callable[[str], bool]) -> set[str]:
    """The strings a match of ``pattern`` can begin with, each spelled out while ``go_on``
    holds for it (or until the pattern ends). ``re``'s parse is untyped, hence ``Any``."""

    def sequence(items: Any, prefixes: set[str]) -> set[str]:
        for op, av in items:
            live = {p for p in prefixes if go_on(p)}
            if not live:
                break
            prefixes = (prefixes - live) | item(op, av, live)
        return prefixes

    def characters(av: Any) -> set[str]:
        found: set[str] = set()
        for op, value in av:
            if op is sre.LITERAL:
                found.add(chr(value))
            elif op is sre.RANGE:
                found.update(map(chr, range(value[0], value[1] + 1)))
            else:
                found.add(_UNSPELLED)
        return found

    def item(op: Any, av: Any, prefixes: set[str]) -> set[str]:
        if op is sre.LITERAL:
            return {p + chr(av) for p in prefixes}
        if op is sre.IN:
            chars = characters(av)
            return {p + c for p in prefixes for c in chars}
        if op is sre.SUBPATTERN:
            return sequence(av[3], prefixes)
        if op is sre.BRANCH:
            return set().union(*(sequence(alt, prefixes) for alt in av[1]))
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low: int = av[0]
            high: int = av[1]
            found: set[str] = set()
            current, count = prefixes, 0
            while True:
                if count >= low:
                    found |= current
                if count >= high or count > 60 or not any(go_on(p) for p in current):
                    return found
                current = sequence(av[2], current)
                count += 1
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            return prefixes
        return {p + _UNSPELLED for p in prefixes}

    return sequence(_parser.parse(pattern), {""})


def _uncovered(pattern: str, starts: tuple[str, ...]) -> set[str]:
    """Beginnings of ``pattern``'s matches that begin with none of ``starts``."""
    def go_on(prefix: str) -> bool:
        return (not prefix.startswith(starts)
                and any(s.startswith(prefix) and s != prefix for s in starts))
    return {b for b in _beginnings(pattern, go_on) if not b.startswith(starts)}


def test_every_url_begins_with_www_or_a_scheme_of_2_to_16_characters() -> None:
    """``UrlDetector.find`` tries the pattern only there; spelling out every scheme is too
    many strings, so this pins the beginning that the starts are derived from."""
    assert UrlDetector()._pattern.pattern.startswith(r"(?:[a-z][a-z0-9+.-]{1,15}://|www\.)")


def test_every_german_street_anchor_begins_with_a_needle() -> None:
    assert _uncovered(_DE_ANCHOR, _DE_NEEDLES) == set()


def test_every_name_match_begins_with_a_listed_word() -> None:
    pattern = NameDetector()._pattern.pattern
    spelled = _beginnings(pattern, lambda prefix: prefix == "" or prefix[-1].isalpha())
    first_words = {b[:-1] if not b[-1].isalpha() else b for b in spelled}
    assert {w.lower() for w in first_words} - _STARTS == set()
    assert len(first_words) > 50  # the spelling-out reached the alternatives


def test_the_spelling_out_sees_a_missing_start() -> None:
    assert _uncovered("ab|cd[0-9]", ("ab",)) == {"c"}  # spelled until no start can follow
    assert _uncovered(r"(?<!\w)(?:x|yz)w", ("xw",)) == {"y"}
    assert _uncovered(r"k[ab]\d", ("ka1",)) == {"kb", "ka" + _UNSPELLED}


@pytest.mark.parametrize("pattern", [r"a+b?", r"ab|ba", r"(?<![\w-])aa?b", r"a[ab]{2,5}(?!b)"])
def test_match_at_gives_what_finditer_gives(pattern: str) -> None:
    compiled = re.compile(pattern)
    rng = random.Random(11)
    for _ in range(300):
        text = "".join(rng.choice("aab -") for _ in range(rng.randint(0, 40)))
        end = rng.randint(0, len(text))
        starts = occurrences(text, ("a", "b"))
        expected = [m.span() for m in compiled.finditer(text, 0, end)]
        assert [m.span() for m in match_at(compiled, text, starts, end)] == expected


def _run_texts() -> list[str]:
    """Texts dense in digits, separators and capitals, where runs begin and end."""
    rng = random.Random(5)
    pieces = [*_PALETTE, *"0123456789" * 4, " ", "-", ".", ":", "/24", "x", "ext. 12",
              "DE89 3704 0044 0532 0130 00", "5555 5555 5555 4444", "192.168.1.10",
              "00-1A-2B-3C-4D-5E", "1HGCM82633A004352", "1EG4TE5MK73", "078-05-1121", "ß"]
    return _texts() + ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 25)))
                       for _ in range(3000)]


def test_searching_runs_finds_what_searching_the_whole_text_finds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``gated=False`` makes ``Scan.runs`` the whole text and the SSN detector scan all of it,
    as every detector did before runs: the findings must not differ. (Runs are used for texts
    of any length here; by default short texts are searched whole.)"""
    monkeypatch.setattr(base, "_SHORT_TEXT", 0)
    classifier = Classifier(ClassifyConfig())
    detectors = build_detectors(ClassifyConfig())
    differ = []
    for text in _run_texts():
        scan = Scan.of(text, classifier._vocabulary)
        whole = Scan(text, scan.raw, scan.words, gated=False)
        for detector in detectors:
            if list(detector.find(scan)) != list(detector.find(whole)):
                differ.append((type(detector).__name__, text))
    assert differ == [], f"{len(differ)} differ, e.g. {differ[:3]}"


def test_windows_searched_from_their_starts_find_what_finditer_finds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows below a length are searched whole with ``finditer``, longer ones (and all of the
    name detector's) from the starts of their labels and titles; searched all one way or all
    the other, they must give the findings that the mix gives."""
    texts = _texts() + ["\n\n".join(t for t in _texts()[i:i + 20]) for i in range(0, 400, 20)]
    classifier = Classifier(ClassifyConfig(), native=False)  # what is patched is Python's
    expected = [classifier.classify(text).findings for text in texts]
    for threshold in (10**9, 0):
        monkeypatch.setattr(base, "_SHORT_WINDOW", threshold)
        monkeypatch.setattr(NameDetector, "whole_below", threshold)
        assert [classifier.classify(text).findings for text in texts] == expected, threshold
