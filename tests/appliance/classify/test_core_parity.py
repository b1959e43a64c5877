"""The compiled core gives exactly what the Python detectors give (see classify/native.py):
per detector, and through the classifier with its deduplication, levels, site patterns and
disabled types. The texts are the corpus, ~4 KB documents of it, mutations of both, random
strings of fragments near the patterns' edges, and each detector's own edge cases
(``core_texts/``)."""

from __future__ import annotations

import random

import pytest

from appliance.classify import Classifier, ClassifyConfig
from appliance.classify.detectors import Scan, Vocabulary, people
from appliance.classify.findings import BASE_LEVEL, PERSONAL_TYPES, FindingType
from tests.appliance.classify.parity import load_core, mismatches, texts

core = load_core()
_HEALTH_ONLY = {FindingType.MRN, FindingType.HEALTH_PLAN_ID, FindingType.MEDICARE_MBI,
                FindingType.DE_KVNR}


def test_the_core_is_built_whole() -> None:
    assert set(core.DETECTORS) == set(core.SLOTS)
    assert core.HEALTH
    assert Classifier().native is not None and Classifier().native.complete


def test_the_core_weighs_findings_as_findings_py_does() -> None:
    order = list(FindingType)
    assert core.TYPES == tuple(t.value for t in order)
    assert core.BASE_LEVELS == tuple(int(BASE_LEVEL[t]) for t in order)
    assert core.PERSONAL == tuple(t in PERSONAL_TYPES for t in order)
    assert core.HEALTH_TYPES == tuple(t in _HEALTH_ONLY for t in order)


@pytest.mark.parametrize("name", [*core.SLOTS, "health"])
def test_each_detector_equals_its_python_twin(name: str) -> None:
    differ = mismatches(core, name)
    assert differ == [], f"{len(differ)} of {len(texts())} texts differ, e.g. {differ[:2]}"


_CONFIGS = [
    ClassifyConfig(),
    ClassifyConfig(mrn_patterns=(r"\bKH-\d{6}\b", r"\d{3}-\d{2}"), secret_patterns=(
        r"int_[a-z]{8}", r"[a-z]+://"), disabled_types=("email", "health_plan_id", "zip_code"),
        detect_names=False),
    ClassifyConfig(disabled_types=("medicare_mbi", "ssn", "ip_address", "url")),
]


@pytest.mark.parametrize("config", _CONFIGS, ids=["default", "site-patterns", "disabled"])
def test_classifier_results_equal_the_python_path(config: ClassifyConfig) -> None:
    native, python = Classifier(config), Classifier(config, native=False)
    assert native.native is not None and python.native is None
    differ = [text for text in texts()
              if native.classify(text) != python.classify(text)]
    assert differ == [], f"{len(differ)} texts differ, e.g. {differ[:3]}"
    rng = random.Random(5)
    items = list(texts()[:600])
    for _ in range(200):
        conversation = rng.sample(items, rng.randint(1, 6))
        assert native.classify_messages(conversation) == python.classify_messages(conversation)


def test_texts_with_other_digits_take_the_python_path() -> None:
    text = "SSN ١٢٣-45-6789 and 123-45-6789, MRN: ３４５６７"
    classifier = Classifier()  # sets the core up
    assert core.scan((1 << len(FindingType)) - 1, 0, None, text) is None
    assert classifier.classify(text) == Classifier(native=False).classify(text)
    assert classifier.classify(text).findings


@pytest.mark.parametrize("seed", range(3))
def test_arbitrary_code_points_neither_crash_nor_differ(seed: int) -> None:
    """Any str the server can be sent: control characters, lone surrogates, astral
    characters, and letters whose lower case is longer ("İ")."""
    rng = random.Random(seed)
    pool = [*range(0, 0x250), 0x130, 0x1E9E, 0x2019, 0x3000, 0xD800, 0xDFFF, 0xFEFF,
            0x1F600, 0x10FFFF, *range(0x391, 0x3C9)]
    native, python = Classifier(), Classifier(native=False)
    for _ in range(400):
        text = "".join(chr(rng.choice(pool)) if rng.random() < 0.5 else rng.choice(
            ["MRN: 1234567", " Mr. Smith", "Straße 12", "@x.com", " 10.0.0.1 "])
            for _ in range(rng.randint(0, 120)))
        assert native.classify(text) == python.classify(text), text


def test_the_core_lowers_every_code_point_as_str_lower_does() -> None:
    """``Scan.lowered`` is made in C from each code point's simple lower case; ``str.lower``
    agrees except for "İ" (two code points) and "Σ" (final sigma), for which the core asks
    ``str.lower`` itself."""
    every = "".join(chr(c) for c in range(0x110000)
                    if c not in (0x130, 0x3A3) and not (c > 127 and chr(c).isdecimal()))
    assert core.lowered(every) == every.lower()
    for text in ("ΟΔΟΣ ΣΑΣ.", "Σ", "ÄRZTIN İSTANBUL", "İ"):
        assert core.lowered(text) == Scan.of(text, Vocabulary(())).lowered


@pytest.mark.parametrize("unit", [
    "1", "1 ", "1-", "1.", "1:", "a:", "::", "@", "a@", "a.", "a@b.", "A1", "AB12 ", "Ab1-",
    "://", "a://", "-----BEGIN PRIVATE KEY-----", "password: ", "Patient ", "Mr. Ab ",
    "Straße 1 ", "12 Oak ", "DOB ", "ssn ", "x" * 40 + " ", "fe80:", "(555) ", "Dr. ",
    "MRN: ", "age 9", "www.", "ghp_", "4111 ", "DE89 ",
])
def test_long_repetitive_texts_equal_the_python_path(unit: str) -> None:
    """Texts of 20,000 characters made of one fragment: the longest runs, chains and
    windows the detectors can meet (the same units as test_long_inputs.py)."""
    text = (unit * (20_000 // len(unit) + 1))[:20_000]
    assert Classifier().classify(text) == Classifier(native=False).classify(text)


def test_every_listed_word_is_read_alike() -> None:
    """The C detectors carry their own copies of the word lists (triggers, titles, labels,
    cues, street suffixes, health words, non-names): each word, in three cases, in contexts
    where the detectors read it, must give what the Python path gives, so that a word added
    to a Python list and not to its C copy is caught even when no corpus text holds it."""
    native, python = Classifier(), Classifier(native=False)
    words = (set(python._vocabulary._by_key.values()) | set(people._NOT_NAMES)
             | set(people._STARTS))
    templates = ["{w} 123456789", "{w}: 4111 1111 1111 1111", "Mr. {W} Smith and {W}",
                 "Patient {W} {W}son was seen", "{W} Müller, 12 Oak {W}, DOB 01.02.1950",
                 "the {w} is 90 years old, {w} # A1234567 and {w} 2024-01-02", "{w}={w}123!",
                 "12 {W} {W} St.", "Name: {W} Jones, {w} 555-234-5678", "{w}-nr. 12345 {w}"]
    differ = [text for word in sorted(words) for form in {word, word.capitalize(), word.upper()}
              for template in templates
              if native.classify(text := template.format(w=form, W=form.capitalize()))
              != python.classify(text)]
    assert len(words) > 600
    assert differ == [], f"{len(differ)} differ, e.g. {differ[:5]}"
