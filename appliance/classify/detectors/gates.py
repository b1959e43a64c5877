"""Gates: which detectors can find anything in a text, decided before any of them runs.

Most prompts carry no identifier, and on a prompt of a few hundred bytes even one regular
expression pass per detector costs more than the whole time budget. So every detector states
a cheap *necessary condition* for a finding, a ``Gate``, and ``Gates`` checks all of them at
once with C-level string operations: set intersection with the word set, ``in`` on the text,
and ``in`` on byte "shapes" of the text made by ``bytes.translate``. A detector whose gates
all fail is not run at all; one whose gate passes runs exactly as it would without gates, so
the gates change speed, never findings. A gate that is not truly necessary (it can fail on a
text where its detector finds something) is a bug: ``tests/appliance/classify/test_gates.py``
checks them against the detectors on generated and mutated texts.

Shapes (``Scan.shape``): each Latin-1 byte of the text becomes its class, so that a layout is
one substring test. ``0`` a digit, ``A`` an ASCII capital, ``a`` any other letter, `` `` a
space or tab; every other character stands for itself. ``"123-45-6789"`` has the shape
``b"000-00-0000"``; ``"DE89 3704"`` has ``b"AA00 0000"``. A *run* gate asks for ``n``
consecutive characters from one set (a card number is 12+ of ``[0-9 -]`` in a row).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import compress

from appliance.classify.detectors.base import Detector, Scan, run_table


class Gates:
    """All detectors' gates, checked together; ``active`` returns the detectors to run on a
    scan, in the order given (findings are deduplicated in that order).

    Interpreting 20-odd gates one test at a time costs more than the regular expressions it
    saves. So each gate is filed under the items of one *key* field (its needles, lowered
    needles, words or layouts, the first it has); the key tests of all gates run at once in C (``compress`` +
    ``map`` of ``__contains__``, and the word set), select the few candidate gates, and only
    those are checked field by field."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self._detectors = list(detectors)
        gates = [(index, gate) for index, detector in enumerate(self._detectors)
                 for gate in detector.gates]
        #: per gate, in order: (detector index, digit, words, layouts, needles, lowered,
        #: run table, run of ones, check); empty fields are None, and so is the key field
        #: (it held, or the gate would not be a candidate)
        self._plan: list[tuple[int, bool, frozenset[str] | None, tuple[str, ...] | None,
                               tuple[str, ...] | None, tuple[str, ...] | None, bytes | None,
                               bytes, Callable[[Scan], bool] | None]] = []
        #: key -> the gates filed under it; gates without a key field are always candidates
        self._needles: dict[str, list[int]] = {}
        self._lowered: dict[str, list[int]] = {}
        self._layouts: dict[str, list[int]] = {}
        self._words: dict[str, list[int]] = {}
        self._always: list[int] = []
        for number, (index, gate) in enumerate(gates):
            needles, lowered, words, layouts = gate.needles, gate.lowered, gate.words, gate.layouts
            key = gate.key or ("needles" if needles else "lowered" if lowered
                               else "words" if words else "layouts" if layouts else "")
            keys: Iterable[str] = ()
            if key == "needles":
                table, keys, needles = self._needles, needles, ()
            elif key == "lowered":
                table, keys, lowered = self._lowered, lowered, ()
            elif key == "words":
                table, keys, words = self._words, words, frozenset()
            elif key == "layouts":
                table, keys, layouts = self._layouts, layouts, ()
            else:
                self._always.append(number)
            for item in keys:
                table.setdefault(item, []).append(number)
            self._plan.append(
                (index, gate.digit, words or None, layouts or None, needles or None,
                 lowered or None, run_table(gate.run[0]) if gate.run else None,
                 b"1" * gate.run[1] if gate.run else b"", gate.check))
        self._needle_keys = tuple(self._needles)
        self._lowered_keys = tuple(self._lowered)
        self._layout_keys = tuple(self._layouts)

    def _candidates(self, scan: Scan) -> list[int]:
        candidates = list(self._always)
        for keys, table, within in ((self._needle_keys, self._needles, scan.text),
                                    (self._lowered_keys, self._lowered, scan.lowered),
                                    (self._layout_keys, self._layouts, scan.shape)):
            for key in compress(keys, map(within.__contains__, keys)):
                candidates.extend(table[key])
        words = self._words
        for word in scan.words:
            found = words.get(word)
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
