from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from appliance.audit import AuditConfig
from appliance.audit.cli import add_parser, run
from appliance.audit.segments import list_segments
from tests.appliance.audit.conftest import write


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="appliance")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS)

    add_parser(commands, common)
    return parser.parse_args(argv)


def test_verify_exit_codes_and_first_problem(data_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    write(data_dir, 40)
    assert run(parse("audit", "verify"), data_dir, AuditConfig()) == 0
    assert "intact" in capsys.readouterr().out
    path = list_segments(data_dir / "audit")[0][1]
    data = bytearray(path.read_bytes())
    data[300] ^= 1
    path.write_bytes(bytes(data))
    assert run(parse("audit", "verify", "--since", "2000-01-01"), data_dir, AuditConfig()) == 1
    assert f"FAILED: {path.name} seq " in capsys.readouterr().err


def test_search_and_export(data_dir: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    write(data_dir, 12)
    assert run(parse("audit", "search", "--action", "redact", "--json"), data_dir,
               AuditConfig()) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and all(r["action"] == "redact" and r["type"] == "request" for r in rows)
    out = tmp_path / "export.jsonl"
    assert run(parse("audit", "export", "--format", "jsonl", "--out", str(out), "--type",
                     "admin"), data_dir, AuditConfig()) == 0
    kinds = [json.loads(line)["kind"] for line in out.read_text().splitlines()]
    assert kinds == ["start", "stop"]


def test_rotate_and_purge_are_recorded(data_dir: Path, tmp_path: Path) -> None:
    write(data_dir, 30)
    key = tmp_path / "new.key"
    key.write_text("ab" * 32 + "\n")
    assert run(parse("audit", "rotate-master-key", "--new-key-file", str(key)), data_dir,
               AuditConfig()) == 0
    assert (data_dir / "secrets" / "audit-master.key").read_bytes() == bytes.fromhex("ab" * 32)
    assert run(parse("audit", "purge"), data_dir, AuditConfig()) == 0  # retention 0: no-op
    assert run(parse("audit", "verify"), data_dir, AuditConfig()) == 0
    out = tmp_path / "admin.jsonl"
    run(parse("audit", "export", "--out", str(out), "--type", "admin"), data_dir, AuditConfig())
    assert "master_key_rotated" in out.read_text()
