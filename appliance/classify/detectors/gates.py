"""Gates: which detectors can find anything in a text, decided before any of them runs.

Most prompts carry no identifier, and on a prompt of a few hundred bytes even one regular
expression pass per detector costs more than the whole time budget. So every detector states
a cheap *necessary condition* for a finding, a ``Gate``, and ``Gates`` checks all of them at
once with C-level string operations: set intersection with the word set, ``in`` on the text,
one regular expression pass for the lower-case needles, and ``in`` on byte "shapes" of the
text made by ``bytes.translate``. A detector whose gates all fail is not run at all; one whose
gate passes runs exactly as it would without gates, so the gates change speed, never findings.
A gate that is not truly necessary (it can fail on a text where its detector finds something)
is a bug: ``tests/appliance/classify/test_gates.py`` checks them against the detectors on
generated and mutated texts, and the choice of detectors against a field-by-field reading.

Shapes (``Scan.shape``): each Latin-1 byte of the text becomes its class, so that a layout is
one substring test. ``0`` a digit, ``A`` an ASCII capital, ``a`` any other letter, `` `` a
space or tab; every other character stands for itself. ``"123-45-6789"`` has the shape
``b"000-00-0000"``; ``"DE89 3704"`` has ``b"AA00 0000"``. A *run* gate asks for ``n``
consecutive characters from one set (a card number is 12+ of ``[0-9 -]`` in a row).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from appliance.classify.detectors.base import Detector, Scan, run_table


#: A trie of needles: character -> subtree; the key "" marks the end of a needle.
_Trie = dict[str, "_Trie"]


def _trie(needles: Iterable[str]) -> str:
    """An alternation of ``needles`` shaped as a trie (``stra|str.`` is ``str(?:\\.|a)``), so
    that ``re`` tries each character once per position, and the longest needle that begins
    at a position is the one that matches there."""
    tree: _Trie = {}
    for needle in needles:
        node = tree
        for char in needle:
            node = node.setdefault(char, {})
        node[""] = {}

    def branch(node: _Trie) -> str:
        alternatives = [re.escape(char) + branch(child)
                        for char, child in sorted(node.items()) if char]
        if not alternatives:
            return ""
        body = alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"
        return f"(?:{body})?" if "" in node else body

    return branch(tree)


class Needles:
    """Which of a set of substrings occur in a text, found with one ``findall`` instead of a
    ``in`` test each. ``findall`` reports matches that do not overlap, so a needle can hide
    under another's match: one inside it (``str`` in ``stra``) occurs whenever that one does;
    only one that begins inside a match and runs past its end is looked for again with
    ``in``, and only after a match that it can cross. Pays where needles are rare (lower-case
    labels); where they abound (digit layouts) the ``in`` tests cost less."""

    def __init__(self, needles: Iterable[str]) -> None:
        self.needles = tuple(sorted(set(needles)))
        if "" in self.needles:
            raise ValueError("an empty needle occurs everywhere")
        self._pattern = re.compile(_trie(self.needles))
        #: matched needle -> the needles inside it (itself included)
        self._inside = {m: frozenset(n for n in self.needles if n in m) for m in self.needles}
        #: matched needle -> the needles that may begin inside it and end after it
        self._crossing = {m: tuple(n for n in self.needles if n not in m and any(
            n.startswith(m[d:]) for d in range(1, len(m)))) for m in self.needles}

    def present(self, haystack: str) -> set[str]:
        matched = set(self._pattern.findall(haystack))
        if not matched:
            return matched
        inside, crossing = self._inside, self._crossing
        present = set[str]().union(*[inside[m] for m in matched])
        for m in matched:
            for needle in crossing[m]:
                if needle not in present and needle in haystack:
                    present.add(needle)
        return present


#: What ``Gates`` keeps of each gate, in order: the detector's index, whether a digit is
#: needed, then the fields other than the key (None where empty; the key field held, or the
#: gate would not be a candidate): words, layouts, needles, lowered needles, run table and the
#: run of ones looked for in the translated text, check.
_Plan = tuple[int, bool, frozenset[str] | None, tuple[str, ...] | None, tuple[str, ...] | None,
              tuple[str, ...] | None, bytes | None, bytes, Callable[[Scan], bool] | None]


class Gates:
    """All detectors' gates, checked together; ``active`` returns the detectors to run on a
    scan, in the order given (findings are deduplicated in that order).

    Interpreting 20-odd gates one test at a time costs more than the regular expressions it
    saves. So each gate is filed under the items of one *key* field (its needles, lowered
    needles, words or layouts, the first it has); the key tests of all gates are made at once
    (``in`` tests in one comprehension, one ``Needles`` pass over the lowered text, the word
    set), select the few candidate gates, and only those are checked field by field. Keys
    whose gates all need a digit are not tested on a text without one."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self._detectors = list(detectors)
        gates = [(index, gate) for index, detector in enumerate(self._detectors)
                 for gate in detector.gates]
        self._plan: list[_Plan] = []
        #: field -> key -> the gates filed under it; gates without a key field are always
        #: candidates
        tables: dict[str, dict[str, list[int]]] = {
            "needles": {}, "lowered": {}, "words": {}, "layouts": {}}
        #: field -> the keys of a gate that needs no digit
        undigited: dict[str, set[str]] = {field: set() for field in tables}
        self._always: list[int] = []
        for number, (index, gate) in enumerate(gates):
            needles, lowered, words, layouts = gate.needles, gate.lowered, gate.words, gate.layouts
            key = gate.key or ("needles" if needles else "lowered" if lowered
                               else "words" if words else "layouts" if layouts else "")
            keys: Iterable[str] = ()
            if key == "needles":
                keys, needles = needles, ()
            elif key == "lowered":
                keys, lowered = lowered, ()
            elif key == "words":
                keys, words = words, frozenset()
            elif key == "layouts":
                keys, layouts = layouts, ()
            else:
                self._always.append(number)
            for item in keys:
                tables[key].setdefault(item, []).append(number)
                if not gate.digit:
                    undigited[key].add(item)
            self._plan.append(
                (index, gate.digit, words or None, layouts or None, needles or None,
                 lowered or None, run_table(gate.run[0]) if gate.run else None,
                 b"1" * gate.run[1] if gate.run else b"", gate.check))
        self._needles, self._lowered = tables["needles"], tables["lowered"]
        self._words, self._layouts = tables["words"], tables["layouts"]

        def by_digit(field: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
            """The keys to test on a text without a digit, and on one with a digit."""
            return (tuple(k for k in tables[field] if k in undigited[field]),
                    tuple(tables[field]))

        self._needle_keys, self._layout_keys = by_digit("needles"), by_digit("layouts")
        self._lowered_keys = tuple(
            Needles(keys) if keys else None for keys in by_digit("lowered"))

    def _candidates(self, scan: Scan) -> list[int]:
        candidates = list(self._always)
        has_digit, text, shape = scan.has_digit, scan.text, scan.shape
        table = self._needles
        for key in self._needle_keys[has_digit]:
            if key in text:
                candidates.extend(table[key])
        table = self._layouts
        for key in self._layout_keys[has_digit]:
            if key in shape:
                candidates.extend(table[key])
        lowered = self._lowered_keys[has_digit]
        if lowered is not None:
            table = self._lowered
            for key in lowered.present(scan.lowered):
                candidates.extend(table[key])
        table = self._words
        for word in scan.words:
            found = table.get(word)
            if found is not None:
                candidates.extend(found)
        return candidates

    def active(self, scan: Scan) -> list[Detector]:
        if not scan.gated:
            return self._detectors
        candidates = self._candidates(scan)
        if not candidates:
            return []
        text, shape, words, has_digit = scan.text, scan.shape, scan.words, scan.has_digit
        plan, detectors = self._plan, self._detectors
        picked: list[Detector] = []
        last = -1
        for number in sorted(set(candidates)):
            (index, digit, gate_words, layouts, needles, lowered, table, ones,
             check) = plan[number]
            if (index == last or (digit and not has_digit)
                    or (gate_words is not None and words.isdisjoint(gate_words))
                    or (layouts is not None and not any(map(shape.__contains__, layouts)))
                    or (needles is not None and not any(map(text.__contains__, needles)))
                    or (table is not None and ones not in scan.raw.translate(table))
                    or (lowered is not None
                        and not any(map(scan.lowered.__contains__, lowered)))
                    or (check is not None and not check(scan))):
                continue  # a test failed, or another gate of this detector holds
            last = index
            picked.append(detectors[index])
        return picked
