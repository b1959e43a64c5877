"""The quality gates over the generated corpus (no timing asserts: see bench/)."""

import pytest

from appliance.classify import Classifier, Sensitivity
from tests.appliance.classify.corpus import benign_items, identifier_items


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


def test_recall_on_identifier_items(classifier: Classifier) -> None:
    items = identifier_items()
    missed = []
    for item in items:
        result = classifier.classify(item.text)
        got = {f.type for f in result.findings}
        if result.sensitivity < item.level or not item.types <= got:
            missed.append((item.category, sorted(item.types - got), result.sensitivity.label))
    recall = 1 - len(missed) / len(items)
    assert recall >= 0.98, f"recall {recall:.3f} over {len(items)} items; missed {missed[:10]}"


def test_false_positive_rate_on_benign_items(classifier: Classifier) -> None:
    items = benign_items()
    flagged = []
    for item in items:
        result = classifier.classify(item.text)
        if result.findings or result.sensitivity > Sensitivity.INTERNAL:
            flagged.append(sorted({f.type for f in result.findings}))
    fpr = len(flagged) / len(items)
    assert fpr <= 0.05, f"false-positive rate {fpr:.3f} over {len(items)} items; {flagged[:10]}"


def test_corpus_is_deterministic_and_covers_both_languages() -> None:
    first, second = identifier_items(), identifier_items()
    assert [i.text for i in first] == [i.text for i in second]
    categories = {i.category for i in first}
    assert {"clinical", "clinical_de", "billing", "hr", "factory", "secrets"} <= categories
