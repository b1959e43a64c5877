"""The per-message cache of ``classify_messages``: a hit gives exactly what classifying again
gives, it keeps no text, and it stays within its bound."""

from __future__ import annotations

from appliance.classify import Classifier, Sensitivity
from tests.appliance.classify.corpus import benign_items, identifier_items


def _conversations() -> list[list[str]]:
    """The corpus as chats: messages of four items each (most over the cache's threshold),
    eight messages to a conversation (each sharing half its messages with the next),
    identifier-bearing and benign text mixed."""
    items = [item.text for pair in zip(identifier_items(), benign_items()) for item in pair]
    messages = [" ".join(items[i:i + 4]) for i in range(0, len(items) - 4, 4)]
    return [messages[i:i + 8] for i in range(0, len(messages) - 8, 4)]  # overlapping


def test_cached_results_equal_fresh_ones_turn_by_turn() -> None:
    cached, fresh = Classifier(), Classifier(cache_entries=0)
    conversations = _conversations()
    assert len(conversations) >= 20
    for messages in conversations:
        for turn in range(1, len(messages) + 1):  # each turn resends the history
            assert cached.classify_messages(messages[:turn]) == \
                fresh.classify_messages(messages[:turn])
    assert len(cached._cache) > 100  # noqa: SLF001 - the history was served from it
    for messages in conversations:  # all hits now
        assert cached.classify_messages(messages) == fresh.classify_messages(messages)


def test_health_context_of_a_cached_message_still_counts() -> None:
    classifier = Classifier()
    history = ("The patient was admitted with pneumonia and treated with antibiotics. " * 5)
    assert classifier.classify_messages([history]).sensitivity is Sensitivity.PUBLIC
    name = "Please write to Mr. John Smith about the results."
    assert classifier.classify_messages([history, name]).sensitivity is Sensitivity.RESTRICTED
    assert classifier.classify_messages([name]).sensitivity is Sensitivity.CONFIDENTIAL


def test_the_cache_keeps_digests_not_text_and_is_bounded() -> None:
    classifier = Classifier(cache_entries=8)
    texts = [f"Message {i}: Reach Jane Doe at jane{i}@example.org. " * 8 for i in range(20)]
    for text in texts:
        classifier.classify_messages([text])
    cache = classifier._cache  # noqa: SLF001
    assert len(cache) == 8
    for key, (findings, _) in cache.items():
        assert isinstance(key, bytes) and len(key) == 16
        assert all(f.type == "email" or f.type == "person_name" for f in findings)
    short = "Reach Jane at jane@example.org"  # below the threshold: not kept
    classifier.classify_messages([short])
    assert len(cache) == 8
    # a new classifier (a new config) does not share the cache, nor its key
    other = Classifier()
    other.classify_messages([texts[0]])
    assert not set(other._cache) & set(cache)  # noqa: SLF001
