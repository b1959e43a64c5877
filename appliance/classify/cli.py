"""``appliance classify [--jsonl]``: the server's classifier on stdin, for site testing.

Plain mode classifies all of stdin as one text. ``--jsonl`` reads one JSON object per line,
``{"id": ..., "text": ...}``, and answers in the same order. Output lines are
``{"id": ..., "sensitivity": ..., "findings": [{"type", "start", "end"}]}``; spans count
characters (code points) of the text. The matched values are never printed. Exit status 1
if any input line was unusable (reported on stderr by line number, without its content).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

import msgspec

from appliance.classify.classifier import Classifier
from appliance.classify.result import Classification
from appliance.classify.config import ClassifyConfig


class _Input(msgspec.Struct, forbid_unknown_fields=False):
    text: str
    id: Any = None


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
               common: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """Registers ``classify``; ``common`` adds the options every subcommand takes."""
    help_text = "classify text from stdin by sensitivity, as the server does"
    parser = subparsers.add_parser("classify", help=help_text, description=help_text)
    common(parser)
    parser.add_argument("--jsonl", action="store_true",
                        help='read lines {"id": ..., "text": ...} instead of one text')
    return parser


def _line(ident: Any, result: Classification) -> bytes:
    return msgspec.json.encode({
        "id": ident, "sensitivity": result.sensitivity.label,
        "findings": [{"type": f.type, "start": f.start, "end": f.end} for f in result.findings],
    })


def run(args: argparse.Namespace, config: ClassifyConfig, stdin: TextIO | None = None,
        stdout: TextIO | None = None) -> int:
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    classifier = Classifier(config)
    if not getattr(args, "jsonl", False):
        stdout.write(_line(None, classifier.classify(stdin.read())).decode() + "\n")
        return 0
    decoder = msgspec.json.Decoder(_Input)
    status = 0
    for number, raw in enumerate(stdin, start=1):
        if not raw.strip():
            continue
        try:
            item = decoder.decode(raw)
        except msgspec.DecodeError as exc:
            # msgspec's message names the field and position, never the content
            print(f"appliance: error: line {number}: {exc}", file=sys.stderr)
            status = 1
            continue
        stdout.write(_line(item.id, classifier.classify(item.text)).decode() + "\n")
    stdout.flush()
    return status
