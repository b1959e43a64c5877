"""The classifier's compiled core, wired to the Python detectors it mirrors.

Every detector in ``detectors/`` has a C twin in ``_core/`` (built by setup.py) that gives
exactly the same findings in the same order; ``tests/appliance/classify/test_core_parity.py``
holds them to that on the corpus and on mutated and random texts. The core prepares the text
once, runs the detectors, deduplicates as ``classifier._dedupe`` does and weighs the level, in
one call and without Python objects in between: that is what makes the time budget (< 50
microseconds per KB) reachable, since the Python detectors spend most of their time in the
interpreter around their regular expressions, not in them.

What stays in Python, merged into the core's deduplication in the detectors' order:
- the site's own patterns (``mrn_patterns``, ``secret_patterns``): arbitrary regular
  expressions, run with ``re`` and reported as their detector's last findings;
- a detector that the core was built without (``_core.DETECTORS`` lists those it has);
- texts holding a decimal digit outside ASCII ("٣", "３"): ``\\d`` and ``int()`` treat those
  as digits, so the whole text goes down the Python path (``scan`` returns None).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType

from appliance.classify.context import has_health_context
from appliance.classify.detectors import Detector, Scan, Vocabulary
from appliance.classify.detectors.addresses import AddressDetector
from appliance.classify.detectors.codes import IbanDetector, MbiDetector, VinDetector
from appliance.classify.detectors.labelled import LabelledDetector
from appliance.classify.detectors.network import EmailDetector, IpAddressDetector, UrlDetector
from appliance.classify.detectors.numbers import PaymentCardDetector, PhoneDetector, SsnDetector
from appliance.classify.detectors.people import AgeDetector, NameDetector, PersonDateDetector
from appliance.classify.detectors.secrets import SecretDetector
from appliance.classify.findings import Finding, FindingType, Sensitivity
from appliance.classify.result import NOTHING, Classification

#: Each detector's name in the core (``_core.SLOTS``, which also gives their order).
SLOT_OF: dict[type, str] = {
    SecretDetector: "secret", EmailDetector: "email", UrlDetector: "url",
    IpAddressDetector: "ip", SsnDetector: "ssn", PaymentCardDetector: "card",
    PhoneDetector: "phone", IbanDetector: "iban", MbiDetector: "mbi", VinDetector: "vin",
    LabelledDetector: "labelled", NameDetector: "name", PersonDateDetector: "person_date",
    AgeDetector: "age", AddressDetector: "address",
}

_TYPES = tuple(FindingType)
_INDEX = {t.value: i for i, t in enumerate(_TYPES)}


def _levels() -> tuple[Sensitivity, ...]:
    """The level for each value of the core's flags: level | personal << 2 | a health-only
    finding << 3 | health context << 4 (the rules of ``Classifier._level``)."""
    table = []
    for flags in range(32):
        personal, health = flags & 4, flags & 24
        table.append(Sensitivity.RESTRICTED if personal and health else Sensitivity(flags & 3))
    return tuple(table)


LEVEL_OF_FLAGS = _levels()
HEALTH_CONTEXT = 16


class Native:
    """The core set up for one classifier's detectors and enabled types."""

    def __init__(self, core: ModuleType, detectors: list[Detector], enabled: frozenset[str],
                 vocabulary: Vocabulary) -> None:
        if core.TYPES != tuple(t.value for t in _TYPES):
            raise RuntimeError("the classifier core was built for other finding types")
        self._core = core
        core.setup(Finding, _TYPES, Classification, LEVEL_OF_FLAGS, NOTHING)
        self._enabled = enabled
        self._vocabulary = vocabulary
        self._bits = sum(1 << i for i, t in enumerate(_TYPES) if t.value in enabled)
        slots: tuple[str, ...] = core.SLOTS
        skip = (1 << len(slots)) - 1  # detectors that the config leaves out stay out
        #: (slot, detector) for whole detectors run in Python, and for the site patterns
        self._python: list[tuple[int, Detector]] = []
        self._site: list[tuple[int, LabelledDetector | SecretDetector]] = []
        for detector in detectors:
            index = slots.index(SLOT_OF[type(detector)])
            if SLOT_OF[type(detector)] in core.DETECTORS:
                skip &= ~(1 << index)
                if isinstance(detector, LabelledDetector | SecretDetector) \
                        and detector.has_site_patterns:
                    self._site.append((2 * index + 1, detector))
            else:
                self._python.append((2 * index, detector))
        self._skip = skip
        self._health_in_python = not core.HEALTH
        #: whether anything runs in Python besides the core
        self._mixed = bool(self._python or self._site)
        #: ``scan(text)``: the text's ``Classification`` and the level flags (see
        #: ``LEVEL_OF_FLAGS``), or None for a text that only the Python path takes; the core
        #: itself when nothing runs in Python (the common case: one call, no Python frame)
        self.scan: Callable[[str], tuple[Classification, int] | None] = (
            self._scan_mixed if self._mixed or self._health_in_python
            else functools.partial(core.scan, self._bits, self._skip, None))

    @property
    def complete(self) -> bool:
        """Whether every detector and the health context run in the core."""
        return not self._python and not self._health_in_python

    def _extras(self, text: str) -> list[tuple[int, int, int, int, float]]:
        extras: list[tuple[int, int, int, int, float]] = []
        enabled = self._enabled
        if self._python:
            scan = Scan.of(text, self._vocabulary)
            for slot, detector in self._python:
                extras.extend((slot, _INDEX[f.type], f.start, f.end, f.confidence)
                              for f in detector.find(scan) if f.type in enabled)
        for slot, site in self._site:
            extras.extend((slot, _INDEX[f.type], f.start, f.end, f.confidence)
                          for f in site.site_findings(text) if f.type in enabled)
        return extras

    def _scan_mixed(self, text: str) -> tuple[Classification, int] | None:
        got: tuple[Classification, int] | None = self._core.scan(
            self._bits, self._skip, self._extras(text) if self._mixed else None, text)
        if got is not None and self._health_in_python \
                and has_health_context(Scan.of(text, self._vocabulary)):
            flags = got[1] | HEALTH_CONTEXT
            findings = got[0].findings
            return (Classification(LEVEL_OF_FLAGS[flags], findings) if findings else NOTHING,
                    flags)
        return got

