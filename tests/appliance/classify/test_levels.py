import msgspec
import pytest

from appliance.classify import Classifier, ClassifyConfig, Sensitivity, max_level


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


def test_order_and_parse() -> None:
    assert Sensitivity.PUBLIC < Sensitivity.INTERNAL < Sensitivity.CONFIDENTIAL \
        < Sensitivity.RESTRICTED
    assert Sensitivity.parse(" Confidential ") is Sensitivity.CONFIDENTIAL
    assert max_level() is Sensitivity.PUBLIC
    with pytest.raises(ValueError, match="expected one of public"):
        Sensitivity.parse("secret")


@pytest.mark.parametrize(("text", "level"), [
    ("What is the capital of France?", Sensitivity.PUBLIC),
    ("Docs at https://docs.python.org/3/", Sensitivity.INTERNAL),
    ("Reach Jane at jane@example.org", Sensitivity.CONFIDENTIAL),
    ("Reach Jane at jane@example.org about her diabetes", Sensitivity.RESTRICTED),
    ("Mr. John Smith joined the team", Sensitivity.CONFIDENTIAL),
    ("Mr. John Smith was diagnosed with hypertension", Sensitivity.RESTRICTED),
    ("SSN 123-45-6789", Sensitivity.RESTRICTED),
    ("card 4111 1111 1111 1111", Sensitivity.RESTRICTED),
    ("AWS key AKIAIOSFODNN7EXAMPLE", Sensitivity.CONFIDENTIAL),
    ("DB at 10.0.3.12", Sensitivity.CONFIDENTIAL),
    ("Diabetes is a chronic disease.", Sensitivity.PUBLIC),
])
def test_levels(classifier: Classifier, text: str, level: Sensitivity) -> None:
    assert classifier.classify(text).sensitivity is level


def test_declared_raises_never_lowers(classifier: Classifier) -> None:
    public = classifier.classify("hello")
    restricted = classifier.classify("SSN 123-45-6789")
    assert public.level_with_declared("confidential") is Sensitivity.CONFIDENTIAL
    assert restricted.level_with_declared("public") is Sensitivity.RESTRICTED
    assert public.level_with_declared(None) is Sensitivity.PUBLIC
    with pytest.raises(ValueError):
        public.level_with_declared("top-secret")


def test_conversation_is_one_context(classifier: Classifier) -> None:
    texts = ["My diagnosis came back: stage 2 cancer.", "Thanks.", "Email me at a@example.org"]
    result = classifier.classify_messages(texts)
    assert result.sensitivity is Sensitivity.RESTRICTED
    assert [(i, f.type) for i, f in result.findings] == [(2, "email")]
    index, finding = result.findings[0]
    assert texts[index][finding.start:finding.end] == "a@example.org"
    assert classifier.classify(texts[2]).sensitivity is Sensitivity.CONFIDENTIAL


@pytest.mark.parametrize(("raw", "message"), [
    ({"mrn_patterns": ["KH-("]}, "`mrn_patterns[0]` is not a valid regular expression"),
    ({"secret_patterns": ["ok", "a*"]}, "`secret_patterns[1]` matches the empty string"),
    ({"disabled_types": ["emial"]}, "`disabled_types[0]`: unknown finding type"),
    ({"detect_name": False}, "unknown field `detect_name`"),
])
def test_config_errors_name_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message.replace("[", r"\[")
                       .replace("]", r"\]").replace("*", r"\*")):
        msgspec.convert(raw, ClassifyConfig)
