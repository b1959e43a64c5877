import argparse
import io
import json

from appliance.classify import ClassifyConfig
from appliance.classify.cli import add_parser, run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance")
    sub = parser.add_subparsers(dest="command")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config")

    add_parser(sub, common)
    return parser


def test_plain_stdin_is_one_text() -> None:
    args = _parser().parse_args(["classify"])
    out = io.StringIO()
    assert run(args, ClassifyConfig(), io.StringIO("SSN 123-45-6789\n"), out) == 0
    assert json.loads(out.getvalue()) == {
        "id": None, "sensitivity": "restricted",
        "findings": [{"type": "ssn", "start": 4, "end": 15}]}


def test_jsonl_keeps_ids_and_order_and_reports_bad_lines(capsys) -> None:  # type: ignore[no-untyped-def]
    args = _parser().parse_args(["classify", "--jsonl", "--config", "x.toml"])
    lines = '{"id": 1, "text": "hello"}\nnot json\n\n{"id": "b", "text": "a@example.org"}\n'
    out = io.StringIO()
    assert run(args, ClassifyConfig(), io.StringIO(lines), out) == 1
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["id"], r["sensitivity"]) for r in rows] == [(1, "public"), ("b", "confidential")]
    assert "line 2" in capsys.readouterr().err
