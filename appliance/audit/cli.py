"""``appliance audit ...``: verify, search, export, rotate-master-key, purge.

Wired into ``appliance/cli.py`` with ``add_parser(commands, common)`` and dispatched to
``run(args, data_dir, config)``. Exit codes: 0 intact / done, 1 a problem (verify names the
first bad record or checkpoint), 2 usage. Rotation and purge take the writer's lock, so they
refuse to run while the daemon is writing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import msgspec

from appliance.audit.config import AuditConfig
from appliance.audit.crypto import KEY_BYTES, AuditKeyError
from appliance.audit.query import Filters, as_json_object, export_jsonl, search
from appliance.audit.records import AdminEvent, admin_event
from appliance.audit.writer import AuditLocked, AuditLog


def _when(text: str) -> datetime:
    """ISO-8601; a date or a time without zone is taken as UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_when, metavar="ISO", help="records at or after")
    parser.add_argument("--until", type=_when, metavar="ISO", help="records before")
    parser.add_argument("--type", choices=("request", "admin"))
    for name in ("tenant", "department", "app", "key-id", "user", "model", "zone"):
        parser.add_argument(f"--{name}", metavar="VALUE")
    parser.add_argument("--sensitivity", metavar="LEVEL", help="this level or higher")
    parser.add_argument("--action", dest="action_filter",
                        choices=("allow", "redact", "reroute", "block"))


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
               common: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """Add ``audit`` and its actions; ``common`` adds --config/--data-dir to each."""
    audit = subparsers.add_parser("audit", help="verify, search and export the audit log",
                                  description="verify, search and export the audit log")
    common(audit)
    actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text)
        common(sub)
        return sub

    verify = action("verify", "check every record, the hash chain and every checkpoint")
    verify.add_argument("--since", type=_when, metavar="ISO",
                        help="check records from the last checkpoint before this time")
    search_ = action("search", "decrypt and show matching records")
    _filters(search_)
    search_.add_argument("--limit", type=int, default=100, metavar="N")
    search_.add_argument("--json", action="store_true", help="one JSON object per line")
    export = action("export", "decrypt matching records into a file")
    export.add_argument("--format", choices=("jsonl",), default="jsonl")
    export.add_argument("--out", type=Path, metavar="FILE", help="default: standard output")
    _filters(export)
    rotate = action("rotate-master-key",
                    "re-wrap every data key under a new audit master key (daemon stopped)")
    rotate.add_argument("--new-key-file", type=Path, metavar="FILE",
                        help=f"the new key: {KEY_BYTES} raw bytes or {KEY_BYTES * 2} hex digits "
                             "(default: generated)")
    purge = action("purge", "delete segments older than retention_days (daemon stopped)")
    purge.add_argument("--days", type=float, metavar="N",
                       help="override [audit] retention_days")
    return audit


def _make_filters(args: argparse.Namespace) -> Filters:
    return Filters(since=args.since, until=args.until, type=args.type, tenant=args.tenant,
                   department=args.department, app=args.app, key_id=args.key_id,
                   user=args.user, model=args.model, zone=args.zone,
                   sensitivity=args.sensitivity, action=args.action_filter)


def _record_event(data_dir: Path, config: AuditConfig, event: AdminEvent) -> None:
    log = AuditLog(data_dir, config)
    log.start(lifecycle_events=False)
    try:
        log.submit(event).result()
    finally:
        log.close()


def _read_key(path: Path) -> bytes:
    raw = path.read_bytes()
    text = raw.strip()
    if len(text) == KEY_BYTES * 2:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    if len(raw) != KEY_BYTES:
        raise AuditKeyError(f"{path}: expected {KEY_BYTES} raw bytes or {KEY_BYTES * 2} hex")
    return raw


def run(args: argparse.Namespace, data_dir: Path, config: AuditConfig) -> int:
    try:
        return _dispatch(args, data_dir, config)
    except (AuditKeyError, AuditLocked, OSError) as exc:
        print(f"appliance: error: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, data_dir: Path, config: AuditConfig) -> int:
    from appliance.audit.retention import purge
    from appliance.audit.rotate import rotate_master_key
    from appliance.audit.verify import verify

    if args.action == "verify":
        report = verify(data_dir, since=args.since)
        print(f"{report.records} records in {report.segments} segments, "
              f"{report.checkpoints} checkpoints")
        if report.ok:
            print("audit log intact")
            return 0
        for problem in report.problems:
            print(f"FAILED: {problem}", file=sys.stderr)
        return 1
    if args.action == "search":
        for seq, record in search(data_dir, _make_filters(args), limit=args.limit):
            fields = as_json_object(seq, record)
            if args.json:
                print(json.dumps(fields, ensure_ascii=False))
            else:
                print(_one_line(fields))
        return 0
    if args.action == "export":
        out: IO[bytes]
        if args.out is None:
            count = export_jsonl(data_dir, _make_filters(args), sys.stdout.buffer)
        else:
            with args.out.open("xb") as out:
                count = export_jsonl(data_dir, _make_filters(args), out)
        print(f"exported {count} records", file=sys.stderr)
        return 0
    if args.action == "rotate-master-key":
        new_key = _read_key(args.new_key_file) if args.new_key_file else None
        result = rotate_master_key(data_dir, new_key)
        if not result.finished:
            print(f"re-wrapped {result.rewrapped} segments; install secrets/"
                  "audit-master.key.next as the audit-master.key credential, then run "
                  "this command again to finish")
            return 0
        _record_event(data_dir, config, admin_event("master_key_rotated", actor="cli",
                                                    key_id=result.new_key_id))
        print(f"re-wrapped {result.rewrapped} segments under key {result.new_key_id}")
        return 0
    days = args.days if args.days is not None else config.retention_days
    if not days:
        print("retention_days is 0 (keep forever): nothing purged")
        return 0
    purged = purge(data_dir, days)
    if purged.segments:
        _record_event(data_dir, config, admin_event(
            "purged", actor="cli", segments=str(purged.segments), records=str(purged.records),
            anchor_seq=str(purged.anchor_seq)))
    print(f"purged {purged.segments} segments ({purged.records} records)")
    return 0


def _one_line(fields: dict[str, object]) -> str:
    rest = {k: v for k, v in fields.items() if k not in ("seq", "time", "type")}
    return f"{fields['seq']:>8} {fields['time']} {fields['type']:<8} " + \
        msgspec.json.encode(rest).decode()
