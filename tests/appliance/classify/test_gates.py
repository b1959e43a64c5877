"""Gates change speed, never findings: a gate that fails where its detector would find
something is a lost identifier. Compared here with every detector run on every text."""

import random

import pytest

from appliance.classify import Classifier, ClassifyConfig, Finding
from appliance.classify.classifier import _dedupe
from appliance.classify.detectors import Gate, Gates, Scan, Vocabulary, build_detectors
from appliance.classify.detectors.base import run_table
from appliance.classify.detectors.gates import Needles
from tests.appliance.classify.corpus import benign_items, identifier_items

#: Fragments that sit near the edges of the gates' layouts, needles and runs.
_PALETTE = [*"0123456789      --..//::@()+#ABCDEFXYZabcxyzäöüßẞ١٢３\t\n", "SSN ", "MRN: ",
            "Straße ", "str. ", "weg ", "Tel. ", "fax ", "IBAN ", "DE89", "AKIA", "AIza", "ghp_",
            "sk-", "eyJ", "://", "www.", "-----BEGIN PRIVATE KEY-----", "password: ", "Mr. ",
            "Patient ", "DOB ", "d.o.b. ", "y/o", "j.", "Oak Street ", " IL ", "aged ", "NPI ",
            "S/N ", "zip ", "00:1A:2B:3C:4D:5E", "fe80::1", "10.0.0.", "4111 1111 1111 1111",
            "123-45-6789", "(555) 234-5678", "+49 30 1234567", "1EG4-TE5-MK73",
            "1M8GDM9AXKP042788", "Hauptstraße 12\n10115 Berlin", "Versichertennummer "]


def _texts() -> list[str]:
    rng = random.Random(7)
    base = [i.text for i in identifier_items(4)] + [i.text for i in benign_items(100)]
    texts = list(base)
    for text in base:
        chars = list(text)
        for _ in range(3):
            at = rng.randrange(len(chars) + 1)
            if rng.random() < 0.5 and at < len(chars):
                del chars[at]
            else:
                chars.insert(at, rng.choice(_PALETTE))
        texts.append("".join(chars))
    texts += ["".join(rng.choice(_PALETTE) for _ in range(rng.randint(1, 30)))
              for _ in range(1500)]
    return texts


def _ungated(config: ClassifyConfig, text: str) -> list[Finding]:
    detectors = build_detectors(config)
    vocabulary = Vocabulary(frozenset().union(
        *(d.triggers for d in detectors), *(g.words for d in detectors for g in d.gates)))
    scan = Scan.of(text, vocabulary)
    enabled = config.enabled_types()
    return _dedupe(f for d in detectors for f in d.find(scan) if f.type in enabled)


@pytest.mark.parametrize("config", [
    ClassifyConfig(),
    ClassifyConfig(mrn_patterns=(r"\bKH-\d{6}\b",), secret_patterns=(r"int_[a-z]{8}",),
                   disabled_types=("email",), detect_names=False),
])
def test_gated_findings_equal_ungated(config: ClassifyConfig) -> None:
    classifier = Classifier(config, native=False)  # gates belong to the Python path
    differ = [text for text in _texts()
              if list(classifier.classify(text).findings) != _ungated(config, text)]
    assert differ == [], f"{len(differ)} texts differ, e.g. {differ[:3]}"


def _holds(gate: Gate, scan: Scan) -> bool:
    """A gate read field by field, as its docstring defines it."""
    return ((not gate.digit or scan.has_digit)
            and (not gate.words or not scan.words.isdisjoint(gate.words))
            and (not gate.needles or any(n in scan.text for n in gate.needles))
            and (not gate.lowered or any(n in scan.lowered for n in gate.lowered))
            and (not gate.layouts or any(n in scan.shape for n in gate.layouts))
            and (gate.run is None or "1" * gate.run[1] in
                 scan.raw.translate(run_table(gate.run[0])).decode())
            and (gate.check is None or gate.check(scan)))


@pytest.mark.parametrize("config", [
    ClassifyConfig(),
    ClassifyConfig(mrn_patterns=(r"\bKH-\d{6}\b",), secret_patterns=(r"int_[a-z]{8}",),
                   disabled_types=("email",), detect_names=False),
])
def test_gates_pick_the_detectors_a_field_by_field_reading_picks(config: ClassifyConfig
                                                                 ) -> None:
    """``Gates`` tests keys of all gates at once and the other fields of the candidates only;
    the detectors it picks are those with a gate that holds."""
    classifier = Classifier(config, native=False)  # gates belong to the Python path
    detectors = build_detectors(config)
    gates = Gates(detectors)
    differ = []
    for text in _texts():
        scan = Scan.of(text, classifier._vocabulary)
        expected = [d for d in detectors
                    if not scan.gated or any(_holds(g, scan) for g in d.gates)]
        if [type(d) for d in gates.active(scan)] != [type(d) for d in expected]:
            differ.append(text)
    assert differ == [], f"{len(differ)} texts differ, e.g. {differ[:3]}"


@pytest.mark.parametrize("needles", [
    ("0000", "0.0", "000-0000", "000-00-0000", "0A", "A0", "AA00", "A 00000", "  00000", "+0"),
    ("stra", "str.", "s/n", "j.", "y.o.", "y/o", "d.o.b", "ring", "weg"),
    ("aa", "aaa", "aba", "ab", "b", "ba", "bab"),
])
def test_needles_reports_every_needle_that_occurs(needles: tuple[str, ...]) -> None:
    """One ``findall`` does not report a needle hidden under another's match; those are
    implied by the match or looked for again."""
    found = Needles(needles)
    alphabet = sorted(set("".join(needles)) | {"x"})
    rng = random.Random(3)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        assert found.present(text) == {n for n in needles if n in text}, text
