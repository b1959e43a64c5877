"""MiniLM embeddings on the real installed model: the vectors mean what the semantic cache and
/v1/embeddings need them to mean."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from local_models.artifacts import ArtifactStore
from local_models.embeddings import BATCH_SIZE, MAX_TOKENS, MiniLMEmbedder


@pytest.fixture(scope="module")
def embedder(installed: ArtifactStore) -> MiniLMEmbedder:
    paths = installed.ensure_verified("all-minilm-l6-v2")
    return MiniLMEmbedder.load(paths["model.onnx"], paths["tokenizer.json"], threads=2)


def test_vectors_are_384_wide_unit_float32(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(["hello world", "The quick brown fox.", ""])
    assert vectors.shape == (3, 384) == (3, embedder.dimensions)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_paraphrases_score_higher_than_unrelated_text(embedder: MiniLMEmbedder) -> None:
    reset, forgot, capital, cat = embedder.embed(
        [
            "How do I reset my password?",
            "I forgot my password, how can I change it?",
            "What is the capital of France?",
            "The cat sat on the mat.",
        ]
    )
    paraphrase = float(reset @ forgot)
    assert paraphrase > 0.7
    assert paraphrase > float(reset @ capital) + 0.4
    assert paraphrase > float(forgot @ cat) + 0.4


def test_count_tokens_includes_special_tokens_and_ignores_truncation(
    embedder: MiniLMEmbedder,
) -> None:
    assert embedder.count_tokens(["hello world"]) == [4]  # [CLS] hello world [SEP]
    long_text = "word " * 400
    assert embedder.count_tokens(["hello world", long_text, ""]) == [4, 402, 2]
    assert embedder.count_tokens([]) == []


def test_long_text_is_truncated_not_refused(embedder: MiniLMEmbedder) -> None:
    head = "a sentence about hospitals and patients. " * 40
    vectors = embedder.embed([head, head + "tail " * 500])
    assert embedder.count_tokens([head])[0] > MAX_TOKENS
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)


def test_batches_and_padding_do_not_change_the_vectors(embedder: MiniLMEmbedder) -> None:
    texts = [f"sentence number {i} " + "padding " * (i % 7) for i in range(BATCH_SIZE * 2 + 3)]
    together = embedder.embed(texts)
    one_by_one = np.stack([embedder.embed([text])[0] for text in texts])
    assert together.shape == (len(texts), 384)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_concurrent_calls_give_the_sequential_answers(embedder: MiniLMEmbedder) -> None:
    texts = [[f"request {i} about topic {i % 5}", "shared text"] for i in range(24)]
    expected = [embedder.embed(batch) for batch in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(embedder.embed, texts))
        counts = list(pool.map(embedder.count_tokens, texts))
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_allclose(have, want, atol=1e-6)
    assert counts == [embedder.count_tokens(batch) for batch in texts]


def test_empty_input_and_a_bare_string(embedder: MiniLMEmbedder) -> None:
    assert embedder.embed([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.embed("not a list")
