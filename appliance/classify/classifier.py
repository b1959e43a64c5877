"""From text to a sensitivity level: run the detectors, then weigh findings in context.

The rules, in order:
1. each finding has a base level (``findings.BASE_LEVEL``);
2. identifiers of a person (``PERSONAL_TYPES``) in a text or conversation that speaks of
   health, or that carries a record/plan number, make it ``restricted``;
3. a declared classification (header or app default) can raise the result, never lower it.
A conversation is one context: a diagnosis in message 1 and a name in message 3 are PHI.

The work is done by the compiled core (``native.py``, ``_core/``), which mirrors the Python
detectors exactly; the Python path below (gates, detectors, ``_dedupe``) is the specification
the core is tested against, and what runs where the core declines a text or is not built.

Chat clients send the whole conversation with every turn, so without care a conversation of n
turns is classified n times over. ``classify_messages`` keeps what it found in each message of
at least ``_CACHE_MIN_CHARS`` characters (its findings, and whether it speaks of health) under
a keyed hash of the message, so a turn costs the classification of its new messages only. The
cache holds digests and spans, never text; it is bounded, oldest out first, and belongs to one
``Classifier`` (a new config builds a new one). The result for a text depends on the text and
the config alone, so a hit is exactly what classifying again would give.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from collections.abc import Iterable, Sequence
from types import ModuleType

from appliance.classify.config import ClassifyConfig
from appliance.classify.context import HEALTH_WORDS, has_health_context
from appliance.classify.detectors import Gates, Scan, Vocabulary, build_detectors
from appliance.classify.native import HEALTH_CONTEXT, Native
from appliance.classify.result import NOTHING, Classification, ConversationClassification
from appliance.classify.findings import (
    PERSONAL_TYPES,
    Finding,
    FindingType,
    Sensitivity,
    max_level,
)


def _load_core() -> ModuleType | None:
    """The compiled core, built by every install (setup.py); None if it is missing."""
    try:
        return importlib.import_module("appliance.classify._core")
    except ImportError:
        return None


_core = _load_core()

log = logging.getLogger(__name__)

#: Findings that exist only because a person has a health record or health coverage.
_HEALTH_TYPES = frozenset({FindingType.MRN.value, FindingType.HEALTH_PLAN_ID.value,
                           FindingType.MEDICARE_MBI.value, FindingType.DE_KVNR.value})


#: Shorter messages are classified afresh each time: it costs about what hashing them does.
_CACHE_MIN_CHARS = 256
#: Messages remembered per classifier (digests and spans: a few hundred bytes each).
CACHE_ENTRIES = 4096

_NOTHING_SAID = ConversationClassification(Sensitivity.PUBLIC, ())


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """Sorted by position; a finding inside the span of a stronger one is dropped, so that
    the digits of an SSN found both by layout and after "SSN:" are reported once. (Each
    level is looked up once: a long text has dozens of findings, each compared to four.)"""
    listed = list(findings)
    ordered = sorted((f.start, -f.end, -f.level(), -f.confidence, i)
                     for i, f in enumerate(listed))  # the index keeps equal keys in order
    kept: list[Finding] = []
    spans: list[tuple[int, int, int]] = []  # (start, end, level) of each kept finding
    for start, negative_end, negative_level, _, index in ordered:
        end, level = -negative_end, -negative_level
        if spans and end <= spans[-1][1] and level <= spans[-1][2]:
            continue
        if any(k_start <= start and end <= k_end and level <= k_level
               for k_start, k_end, k_level in spans[-4:]):
            continue
        kept.append(listed[index])
        spans.append((start, end, level))
    return kept


class Classifier:
    """Built once per process from the config (patterns are compiled here, not at import);
    ``classify`` and ``classify_messages`` are thread-safe. ``classify`` holds no state
    between calls; ``classify_messages`` remembers long messages (see the module docstring)."""

    def __init__(self, config: ClassifyConfig | None = None,
                 cache_entries: int = CACHE_ENTRIES, native: bool = True) -> None:
        self.config = config or ClassifyConfig()
        #: keyed digest of a message -> (its findings, whether it speaks of health)
        self._cache: dict[bytes, tuple[tuple[Finding, ...], bool]] = {}
        self._cache_entries = cache_entries
        self._cache_key = os.urandom(16)
        self._enabled = self.config.enabled_types()
        detectors = build_detectors(self.config)
        #: None when every type a detector may report is enabled (no filtering needed)
        self._filter = None if frozenset().union(*(d.types for d in detectors)) <= self._enabled \
            else self._enabled
        self._gates = Gates(detectors)
        self._vocabulary = Vocabulary(HEALTH_WORDS.union(
            *(detector.triggers for detector in detectors),
            *(gate.words for detector in detectors for gate in detector.gates)))
        #: the compiled core (see ``native.py``); None: every text takes the Python path
        self.native: Native | None = None
        if native and _core is not None:
            self.native = Native(_core, detectors, self._enabled, self._vocabulary)
        elif native:
            log.warning("the classifier's compiled core is not installed: classifying in "
                        "Python, about ten times slower")

    def _findings(self, scan: Scan) -> list[Finding]:
        """The deduplicated findings in ``scan`` (an empty list for most texts, which no
        detector's gate lets through)."""
        active = self._gates.active(scan)
        if not active:
            return []
        enabled = self._filter
        if enabled is None:
            found = [f for detector in active for f in detector.find(scan)]
        else:
            found = [f for detector in active for f in detector.find(scan)
                     if f.type in enabled]
        return _dedupe(found) if found else found

    @staticmethod
    def _level(findings: Iterable[Finding], health: bool) -> Sensitivity:
        level = Sensitivity.PUBLIC
        personal = False
        for finding in findings:
            level = max_level(level, finding.level())
            personal = personal or finding.type in PERSONAL_TYPES
            health = health or finding.type in _HEALTH_TYPES
        if personal and health:
            return Sensitivity.RESTRICTED
        return level

    def classify(self, text: str) -> Classification:
        if self.native is not None:
            got = self.native.scan(text)
            if got is not None:
                return got[0]
        scan = Scan.of(text, self._vocabulary)
        findings = self._findings(scan)
        if not findings:
            return NOTHING  # most texts: no level to weigh
        return Classification(self._level(findings, has_health_context(scan)),
                              tuple(findings))

    def classify_messages(self, texts: Sequence[str]) -> ConversationClassification:
        """One context for all ``texts`` (the messages of one request), spans per text."""
        pairs: list[tuple[int, Finding]] = []
        health = False
        for index, text in enumerate(texts):
            findings, speaks_of_health = self._message(text)
            if findings:
                pairs.extend([(index, f) for f in findings])
            health = health or speaks_of_health
        if not pairs:
            return _NOTHING_SAID  # most conversations: no level to weigh
        return ConversationClassification(self._level([f for _, f in pairs], health),
                                          tuple(pairs))

    def _message(self, text: str) -> tuple[tuple[Finding, ...], bool]:
        """The findings in one message and whether it speaks of health, from the cache when
        the message is long enough to be kept there (see the module docstring)."""
        key = None
        if self._cache_entries and len(text) >= _CACHE_MIN_CHARS:
            key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16,
                                  key=self._cache_key).digest()
            known = self._cache.get(key)
            if known is not None:
                return known
        got = self.native.scan(text) if self.native is not None else None
        found: tuple[tuple[Finding, ...], bool]
        if got is not None:
            found = got[0].findings, bool(got[1] & HEALTH_CONTEXT)
        else:
            scan = Scan.of(text, self._vocabulary)
            found = (tuple(self._findings(scan)), has_health_context(scan))
        if key is not None:
            cache = self._cache
            if len(cache) >= self._cache_entries:
                try:
                    del cache[next(iter(cache))]  # the oldest
                except (KeyError, RuntimeError, StopIteration):
                    pass  # another thread got there first: nothing to do
            cache[key] = found
        return found
