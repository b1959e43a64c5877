"""The redactor: typed placeholders, one per value across all messages, overlapping findings
merged, and re-identification of answers, including a placeholder split across stream chunks
at every possible point."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.classify import Classifier, Finding
from appliance.config import LimitsConfig
from appliance.errors import PolicyBlocked
from appliance.keys import KeyStore
from appliance.pipeline import Pipeline, RequestContext
from appliance.policy import ForbiddenAction, OnForbiddenConfig, PolicyConfig
from appliance.providers.base import Embeddings, ModelInfo, Provider
from appliance.redact import Redaction, label
from appliance.routing import Router
from appliance.state import StateDB
from appliance.types import (Delta, EmbeddingRequest, Generation, GenerationRequest, Message,
                             SamplingParams, Usage)


def find(text: str, value: str, kind: str, occurrence: int = 0) -> Finding:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(value, start + 1)
    return Finding(kind, start, start + len(value), 0.9)


def test_each_identifier_becomes_a_typed_placeholder() -> None:
    text = "Patient Jane Doe, MRN 55512345, SSN 123-45-6789."
    redaction = Redaction.of([text], [(0, find(text, "Jane Doe", "person_name")),
                                      (0, find(text, "55512345", "mrn")),
                                      (0, find(text, "123-45-6789", "ssn"))])
    assert redaction.texts == ["Patient [PERSON_1], MRN [MRN_1], SSN [SSN_1]."]
    assert redaction.placeholders == {"[PERSON_1]", "[MRN_1]", "[SSN_1]"}
    assert redaction.reidentify(redaction.texts[0]) == text


def test_labels_of_finding_types() -> None:
    assert label("person_name") == "PERSON"
    assert label("date_of_birth") == "DOB"
    assert label("some new-type") == "SOME_NEW_TYPE"  # a type added later still works


def test_the_same_value_gets_the_same_placeholder_in_every_message() -> None:
    texts = ["You are a scribe for Dr. Smith.",
             "Mr. John Smith called; John Smith's MRN is 1234567.",
             "Noted: Mr. John Smith, MRN 1234567. Mrs. Ada Lee too."]
    findings = [(0, find(texts[0], "Smith", "person_name")),
                (1, find(texts[1], "John Smith", "person_name")),
                (1, find(texts[1], "1234567", "mrn")),
                (2, find(texts[2], "John Smith", "person_name")),
                (2, find(texts[2], "1234567", "mrn")),
                (2, find(texts[2], "Ada Lee", "person_name"))]
    redaction = Redaction.of(texts, findings)
    assert redaction.texts == [
        "You are a scribe for Dr. [PERSON_1].",
        # the second "John Smith" was not flagged on its own: replaced as a known value
        "Mr. [PERSON_2] called; [PERSON_2]'s MRN is [MRN_1].",
        "Noted: Mr. [PERSON_2], MRN [MRN_1]. Mrs. [PERSON_3] too."]
    for original, redacted in zip(texts, redaction.texts):
        assert redaction.reidentify(redacted) == original


def test_known_values_are_replaced_only_as_whole_words() -> None:
    texts = ["Patient Ann Lee.", "Annual review for Ann Lee; Ann Leeds is someone else."]
    redaction = Redaction.of(texts, [(0, find(texts[0], "Ann Lee", "person_name"))])
    assert redaction.texts[1] == "Annual review for [PERSON_1]; Ann Leeds is someone else."


def test_overlapping_findings_are_merged_under_the_strongest_type() -> None:
    text = "Call 555-867-5309 or write to 12 Oak Street, Springfield."
    phone = find(text, "555-867-5309", "phone")
    inside = Finding("account_number", phone.start + 4, phone.end, 0.5)
    address = find(text, "12 Oak Street", "street_address")
    ssn_over_address = Finding("ssn", address.start + 3, address.end + 3, 0.6)
    redaction = Redaction.of([text], [(0, phone), (0, inside), (0, address),
                                      (0, ssn_over_address)])
    # nothing of either span survives; the union of the overlap is typed after the SSN
    assert redaction.texts == ["Call [PHONE_1] or write to [SSN_1]pringfield."]
    assert redaction.reidentify(redaction.texts[0]) == text


def test_a_placeholder_the_client_wrote_is_not_handed_out() -> None:
    text = "Template uses [PERSON_1]; patient is Jane Doe."
    redaction = Redaction.of([text], [(0, find(text, "Jane Doe", "person_name"))])
    assert redaction.texts == ["Template uses [PERSON_1]; patient is [PERSON_2]."]
    assert redaction.reidentify("[PERSON_2] and [PERSON_1]") == "Jane Doe and [PERSON_1]"


def test_unknown_placeholders_pass_through() -> None:
    text = "Jane Doe"
    redaction = Redaction.of([text], [(0, find(text, "Jane Doe", "person_name"))])
    answer = "[PERSON_1] met [PERSON_7], [PERSON_10], [MRN_1], PERSON_1 and [person_1]."
    assert redaction.reidentify(answer) == (
        "Jane Doe met [PERSON_7], [PERSON_10], [MRN_1], PERSON_1 and [person_1].")


def test_repr_never_shows_values() -> None:
    text = "Jane Doe"
    redaction = Redaction.of([text], [(0, find(text, "Jane Doe", "person_name"))])
    assert "Jane" not in repr(redaction) and "Jane" not in str(redaction)


def test_apply_redacts_messages_prompt_stop_sequences_and_embedding_inputs() -> None:
    texts = ["Summarise for Jane Doe.", "Jane Doe, DOB 03/14/1961."]
    findings = [(0, find(texts[0], "Jane Doe", "person_name")),
                (1, find(texts[1], "03/14/1961", "date_of_birth"))]
    redaction = Redaction.of(texts, findings)
    chat = GenerationRequest("m", SamplingParams(stop=["Jane Doe:", "END"]),
                             messages=[Message("system", texts[0]), Message("user", texts[1])])
    sent = redaction.apply(chat)
    assert sent.messages == [Message("system", "Summarise for [PERSON_1]."),
                             Message("user", "[PERSON_1], DOB [DOB_1].")]
    assert sent.sampling.stop == ["[PERSON_1]:", "END"]
    assert chat.messages is not None and chat.messages[0].content == texts[0]  # untouched
    embed = redaction.apply(EmbeddingRequest("e", list(texts)))
    assert embed.inputs == redaction.texts
    single = Redaction.of([texts[0]], [findings[0]])
    prompt = single.apply(GenerationRequest("m", SamplingParams(), prompt=texts[0]))
    assert prompt.prompt == "Summarise for [PERSON_1]."


def test_mask_adds_the_findings_of_another_text() -> None:
    text = "Jane Doe"
    redaction = Redaction.of([text], [(0, find(text, "Jane Doe", "person_name"))])
    answer = "Jane Doe's sister Mary Major"
    assert redaction.mask(answer, [find(answer, "Mary Major", "person_name")]) == (
        "[PERSON_1]'s sister [PERSON_2]")


def test_redacting_with_the_real_classifier_leaves_nothing_to_find() -> None:
    texts = ["Patient Jane Doe, MRN 55512345, has type 2 diabetes.",
             "SSN 123-45-6789, email jane.doe@example.com, call 555-867-5309."]
    classifier = Classifier()
    result = classifier.classify_messages(texts)
    redaction = Redaction.of(texts, result.findings)
    again = classifier.classify_messages(redaction.texts)
    assert again.findings == () and again.sensitivity.label == "public"
    for value in ("Jane Doe", "55512345", "123-45-6789", "jane.doe@example.com",
                  "555-867-5309"):
        assert all(value not in t for t in redaction.texts)
    assert [redaction.reidentify(t) for t in redaction.texts] == texts


# Streams ----------------------------------------------------------------------------------

@pytest.fixture
def streamed() -> tuple[Redaction, str, str]:
    """A redaction and an answer (with placeholders) whose re-identification is known."""
    text = "Jane Doe (MRN 55512345) and Max Mustermann"
    redaction = Redaction.of([text], [(0, find(text, "Jane Doe", "person_name")),
                                      (0, find(text, "55512345", "mrn")),
                                      (0, find(text, "Max Mustermann", "person_name"))])
    answer = "[PERSON_1], MRN [MRN_1]: [PERSON_2]'s [PERSON_3] [x] [MRN_1"
    expected = "Jane Doe, MRN 55512345: Max Mustermann's [PERSON_3] [x] [MRN_1"
    return redaction, answer, expected


def restore(redaction: Redaction, chunks: list[str]) -> str:
    restorer = redaction.restorer()
    out = [restorer.feed(chunk) for chunk in chunks]
    return "".join(out) + restorer.flush()


def test_every_split_point_of_a_stream(streamed: tuple[Redaction, str, str]) -> None:
    redaction, answer, expected = streamed
    for cut in range(len(answer) + 1):
        assert restore(redaction, [answer[:cut], answer[cut:]]) == expected, cut


def test_every_pair_of_split_points(streamed: tuple[Redaction, str, str]) -> None:
    redaction, answer, expected = streamed
    for a, b in itertools.combinations(range(len(answer) + 1), 2):
        assert restore(redaction, [answer[:a], answer[a:b], answer[b:]]) == expected, (a, b)


def test_a_stream_of_single_characters_holds_back_less_than_a_placeholder(
        streamed: tuple[Redaction, str, str]) -> None:
    redaction, answer, expected = streamed
    restorer = redaction.restorer()
    sent = ""
    for end in range(1, len(answer) + 1):
        sent += restorer.feed(answer[end - 1])
        so_far = redaction.reidentify(answer[:end])
        assert so_far.startswith(sent)
        assert len(so_far) - len(sent) < redaction.longest  # at most a placeholder's beginning
    assert sent + restorer.flush() == expected


def test_text_that_cannot_start_a_placeholder_is_not_held(
        streamed: tuple[Redaction, str, str]) -> None:
    redaction, _, _ = streamed
    restorer = redaction.restorer()
    assert restorer.feed("a [b") == "a [b"  # "[b" starts no placeholder of this request
    assert restorer.feed("x [PERS") == "x "  # "[PERS" may
    assert restorer.feed("ON_2] y [") == "Max Mustermann y "
    assert restorer.feed("") == ""
    assert restorer.flush() == "["  # an unfinished beginning is sent as it is


def test_a_stream_without_redaction_passes_through() -> None:
    restorer = Redaction.of(["nothing"], []).restorer()
    assert restorer.feed("[PERSON_") == "[PERSON_"
    assert restorer.flush() == ""


# Through the pipeline: embeddings (no cloud provider offers them to the end-to-end tests) ----

class CloudEmbedder(Provider):
    """A cloud embedding model that keeps what it was sent."""

    name, zone = "cloud-embedder", "cloud"

    def __init__(self) -> None:
        self.sent: list[list[str]] = []

    def models(self) -> list[ModelInfo]:
        return [ModelInfo("cloud-embed", "embedding", "test")]

    async def generate(self, request: GenerationRequest) -> Generation:
        raise NotImplementedError

    def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        raise NotImplementedError

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        self.sent.append(list(request.inputs))
        return Embeddings([[0.0] for _ in request.inputs], Usage(1, 0), request.model)


def embed_through_pipeline(tmp_path: Path, action: ForbiddenAction, inputs: list[str],
                           declared: str | None = None
                           ) -> tuple[CloudEmbedder, RequestContext]:
    keys = KeyStore(StateDB(tmp_path / "state.db"), b"\x00" * 32)
    token, _ = keys.create("admin", role="admin")
    provider = CloudEmbedder()
    policy = PolicyConfig(on_forbidden=OnForbiddenConfig(restricted=action))
    pipeline = Pipeline(keys, Router([provider]), LimitsConfig(), classifier=Classifier(),
                        policy=policy)
    ctx = RequestContext("req-1", declared=declared)
    body = json.dumps({"model": "cloud-embed", "input": inputs}).encode()
    asyncio.run(pipeline.run_embeddings(ctx, f"Bearer {token}", body))
    return provider, ctx


INPUTS = ["Patient Jane Doe, MRN 55512345, has diabetes.", "Jane Doe was discharged."]


def test_embeddings_of_a_restricted_text_are_made_of_the_redacted_text(tmp_path: Path) -> None:
    provider, ctx = embed_through_pipeline(tmp_path, "redact", INPUTS)
    assert provider.sent == [["Patient [PERSON_1], MRN [MRN_1], has diabetes.",
                              "[PERSON_1] was discharged."]]
    assert ctx.action == "redact" and ctx.sensitivity == "restricted"


def test_embeddings_are_blocked_when_the_policy_says_block(tmp_path: Path) -> None:
    with pytest.raises(PolicyBlocked):
        embed_through_pipeline(tmp_path, "block", INPUTS)


def test_redacted_embeddings_still_declared_restricted_are_blocked(tmp_path: Path) -> None:
    with pytest.raises(PolicyBlocked, match=r"still classified restricted \(declared"):
        embed_through_pipeline(tmp_path, "redact", INPUTS, declared="restricted")
