"""Long and pathological inputs finish, and long texts give the same findings as their parts.

No timing asserts (see bench/): a regex that backtracks badly on such input makes this file
hang instead of pass. Sizes are modest (~100 KB) so that the suite stays fast.
"""

import pytest

from appliance.classify import Classifier
from tests.appliance.classify.corpus import benign_items, identifier_items

SIZE = 100_000


@pytest.fixture(scope="module", params=[True, False], ids=["core", "python"])
def classifier(request: pytest.FixtureRequest) -> Classifier:
    return Classifier(native=request.param)


def _repeat(unit: str) -> str:
    return (unit * (SIZE // len(unit) + 1))[:SIZE]


def test_long_benign_text_has_no_findings(classifier: Classifier) -> None:
    text = _repeat(" ".join(item.text for item in benign_items(60)) + "\n")
    assert classifier.classify(text).findings == ()


@pytest.mark.parametrize("unit", [
    "1", "1 ", "1-", "1.", "1:", "a:", "::", "@", "a@", "a.", "A1", "AB12 ", "Ab1-",
    "://", "a://", "-----BEGIN PRIVATE KEY-----", "password: ", "Patient ", "Mr. Ab ",
    "Straße 1 ", "12 Oak ", "DOB ", "ssn ", "x" * 40 + " ", "fe80:", "(555) ",
])
def test_pathological_text_finishes(classifier: Classifier, unit: str) -> None:
    result = classifier.classify(_repeat(unit))
    assert all(0 <= f.start < f.end <= SIZE for f in result.findings)


def test_identifiers_in_a_long_text_are_found_where_they_stand(classifier: Classifier) -> None:
    items = [item.text for item in identifier_items(3)]
    filler = "\n" + _repeat("The quick brown fox jumps over 13 lazy dogs. ")[:2000] + "\n"
    text = filler.join(items)
    found = {(f.type, text[f.start:f.end]) for f in classifier.classify(text).findings}
    for item in items:
        alone = {(f.type, item[f.start:f.end]) for f in classifier.classify(item).findings}
        assert alone <= found
