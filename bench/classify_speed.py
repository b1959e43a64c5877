"""Classifier speed (microseconds per KB of text) and quality over the labelled corpus.

    .venv/bin/python bench/classify_speed.py [--repeats N]

Runs the default ``Classifier`` (its compiled core) over every corpus item, `repeats` times,
and prints the median time per KB for identifier-bearing text, benign text and all of it,
next to the same classifier on its Python path and a baseline measured in the same run (one
``str.lower`` + word split, the floor any word-cue classifier written in Python pays), plus
recall and the false-positive rate as the tests define them.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.classify import Classifier, Sensitivity  # noqa: E402
from tests.appliance.classify.corpus import Item, benign_items, identifier_items  # noqa: E402


def _us_per_kb(texts: list[str], fn: Callable[[str], object], repeats: int) -> float:
    size_kb = sum(len(t.encode()) for t in texts) / 1024
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for text in texts:
            fn(text)
        runs.append((time.perf_counter() - start) * 1e6 / size_kb)
    return statistics.median(runs)


def quality(classifier: Classifier, ids: list[Item], benign: list[Item]) -> tuple[float, float]:
    recalled = 0
    for item in ids:
        result = classifier.classify(item.text)
        if result.sensitivity >= item.level and item.types <= {f.type for f in result.findings}:
            recalled += 1
    false_pos = sum(1 for item in benign
                    if (r := classifier.classify(item.text)).findings
                    or r.sensitivity > Sensitivity.INTERNAL)
    return recalled / len(ids), false_pos / len(benign)


def chats(texts: list[str], repeats: int) -> None:
    """Chat clients resend the whole history with every turn: 10-turn conversations of
    ~500-byte messages, each turn classified with ``classify_messages`` as the server does,
    by a classifier with its per-message cache and by one without (the baseline here)."""
    messages = [" ".join(texts[i:i + 4]) for i in range(0, len(texts) - 4, 4)]
    conversations = [messages[i:i + 10] for i in range(0, len(messages) - 10, 10)]
    turns = [conversation[:k] for conversation in conversations
             for k in range(1, len(conversation) + 1)]
    new_kb = sum(len(m.encode()) for c in conversations for m in c) / 1024
    figures = {}
    for label, entries in (("without cache", 0), ("with cache", 4096)):
        runs = []
        for _ in range(repeats):
            classifier = Classifier(cache_entries=entries)  # cold: every conversation is new
            start = time.perf_counter()
            for turn in turns:
                classifier.classify_messages(turn)
            runs.append((time.perf_counter() - start) * 1e6)
        figures[label] = statistics.median(runs)
    print(f"chats: {len(conversations)} conversations of 10 turns, {new_kb:.1f} KB of messages, "
          "each turn resending the history")
    for label, total in figures.items():
        print(f"{label:>18}: {total / len(turns):7.1f} us per turn, {total / new_kb:7.1f} us "
              f"per KB of new text ({figures['without cache'] / total:4.1f}x faster than "
              "without cache)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    ids, benign = identifier_items(), benign_items()
    classifier = Classifier()
    words = re.compile(r"[a-zäöüß]+")
    id_texts, benign_texts = [i.text for i in ids], [i.text for i in benign]
    all_texts = id_texts + benign_texts
    # the same texts joined into ~4 KB documents: fixed per-call costs spread out
    joined = ["\n\n".join(all_texts[i:i + 20]) for i in range(0, len(all_texts), 20)]
    baseline = _us_per_kb(all_texts, lambda t: frozenset(words.findall(t.lower())),
                          args.repeats)
    print(f"corpus: {len(ids)} identifier items, {len(benign)} benign items, "
          f"{sum(len(t.encode()) for t in all_texts) / 1024:.1f} KB; python "
          f"{sys.version.split()[0]}; median of {args.repeats} repeats")
    python = Classifier(native=False)
    core = "compiled core" if classifier.native is not None else "NO compiled core"
    print(f"{'':>18}  {core:>26}  {'Python path':>26}")
    for label, texts in (("identifier items", id_texts), ("benign items", benign_texts),
                         ("all items", all_texts), ("~4 KB documents", joined)):
        us = _us_per_kb(texts, classifier.classify, args.repeats)
        slow = _us_per_kb(texts, python.classify, max(3, args.repeats // 3))
        print(f"{label:>18}: {us:7.1f} us/KB ({us / baseline:5.2f}x baseline)  "
              f"{slow:7.1f} us/KB ({slow / baseline:5.2f}x baseline)")
    print(f"{'baseline':>18}: {baseline:7.1f} us/KB  (lower() + word split)")
    chats(all_texts, args.repeats)
    recall, fpr = quality(classifier, ids, benign)
    print(f"recall {recall:.3f} (target >= 0.98), false-positive rate {fpr:.3f} (target <= 0.05)")


if __name__ == "__main__":
    main()
