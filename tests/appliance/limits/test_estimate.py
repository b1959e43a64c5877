"""Token estimates with the real installed tiktoken encodings."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.limits.estimate import TokenEstimator, approximate_tokens, openai_encoding_for
from appliance.types import Message
from tests.conftest import models_dir


@dataclass
class Named:
    role: str
    content: str
    name: str


@pytest.fixture(scope="module")
def estimator() -> TokenEstimator:
    return TokenEstimator(models_dir())


def test_model_families() -> None:
    assert openai_encoding_for("gpt-4o-mini") == "o200k_base"
    assert openai_encoding_for("openai/gpt-4.1") == "o200k_base"
    assert openai_encoding_for("o3-mini") == "o200k_base"
    assert openai_encoding_for("gpt-5") == "o200k_base"
    assert openai_encoding_for("gpt-4-turbo") == "cl100k_base"
    assert openai_encoding_for("gpt-3.5-turbo") == "cl100k_base"
    assert openai_encoding_for("claude-3-5-sonnet") is None


def test_known_strings(estimator: TokenEstimator) -> None:
    assert estimator.estimate_text("gpt-4", "hello world") == 2
    assert estimator.estimate_text("gpt-4o", "hello world") == 2
    # a client's special-token text is counted as text, not refused
    assert estimator.estimate_text("gpt-4", "<|endoftext|>") > 1


def test_chat_overhead(estimator: TokenEstimator) -> None:
    # 3 priming + per message (3 + role + content): user=1 token, "hello world"=2 tokens
    messages = [Message("user", "hello world")]
    assert estimator.estimate_chat("gpt-4", messages) == 3 + 3 + 1 + 2
    two = [Message("system", "hello world"), Message("user", "hello world")]
    assert estimator.estimate_chat("gpt-4o", two) == 3 + 2 * (3 + 1 + 2)
    named = [Named("user", "hello world", "bob")]
    assert estimator.estimate_chat("gpt-4", named) == 3 + 3 + 1 + 2 + 1 + 1


def test_approximation_for_other_providers(estimator: TokenEstimator) -> None:
    assert approximate_tokens("") == 0
    assert approximate_tokens("abc") == 2  # 3 bytes / 3 * 1.2 = 1.2 -> 2
    assert approximate_tokens("x" * 300) == 120
    assert estimator.estimate_text("claude-3-5-sonnet", "x" * 300) == 120
    text = "The patient presented with fever and a persistent cough. " * 20
    real = estimator.estimate_text("gpt-4o", text)
    assert approximate_tokens(text) > real  # the margin over-estimates English


def test_local_models_use_their_own_tokenizer(tmp_path: Path) -> None:
    estimator = TokenEstimator(None)
    estimator.register_local("gemma", lambda text: len(text.split()))
    assert estimator.estimate_text("gemma", "one two three") == 3
    assert estimator.estimate_chat("gemma", [Message("user", "one two")]) == 3 + 4 + 1 + 2
    estimator.register_local("exact", len, lambda messages: 42)
    assert estimator.estimate_chat("exact", [Message("user", "x")]) == 42


def test_one_byte_per_token_is_an_upper_bound(estimator: TokenEstimator) -> None:
    """With ``approx_bytes_per_token = 1`` the estimate is never below what a byte-level BPE
    makes, even for the digit- and symbol-dense text the default margin may not cover."""
    strict = TokenEstimator(None, approx_bytes_per_token=1)
    rng = random.Random(7)
    alphabets = ["0123456789", "0123456789-/.:", "!@#$%^&*(){}[]<>", "日本語の文章と漢字",
                 "abcdefghij klmnop", "ÄÖÜäöüß éèê"]
    for _ in range(300):
        text = "".join(rng.choice(rng.choice(alphabets)) for _ in range(rng.randint(1, 200)))
        assert strict.estimate_text("claude-x", text) >= estimator.estimate_text("gpt-4o", text)
        assert strict.estimate_text("claude-x", text) == len(text.encode("utf-8"))
    digits = "4111 1111 1111 1111, 2025-01-31, 10.0.0.1 " * 10
    assert approximate_tokens(digits, 1) >= approximate_tokens(digits)
