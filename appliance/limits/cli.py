"""``appliance usage report`` and ``appliance limits set|list``, on ``state.db`` directly.

    appliance usage report [--group-by department,model] [--since T] [--until T]
                           [--json | --csv]
    appliance limits set KIND ID [--rpm N] [--tpm N] [--tpd N] [--monthly-budget-micros N]
    appliance limits list [--json]

A running daemon sees new limits within ``limits_policy.limits_refresh_s``; a report sees rows
committed so far (at most one ledger batch interval behind the daemon).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from appliance.datadir import DataDir
from appliance.errors import ApplianceError
from appliance.limits.report import (GROUP_BY, format_csv, format_table, parse_group_by,
                                     parse_time, usage_report)
from appliance.limits.store import LIMIT_FIELDS, SCOPE_KINDS, LimitStore
from appliance.state import StateDB

COMMANDS = ("usage", "limits")


def add_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    usage = command("usage", "usage reports from the ledger").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    report = usage.add_parser("report", help="tokens, cost, requests and cache hits by group")
    report.add_argument("--group-by", default="", metavar="FIELDS",
                        help=f"comma-separated, any of: {', '.join(GROUP_BY)}")
    report.add_argument("--since", metavar="TIME", help="ISO 8601 or epoch seconds (UTC)")
    report.add_argument("--until", metavar="TIME", help="ISO 8601 or epoch seconds, exclusive")
    shape = report.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print JSON")
    shape.add_argument("--csv", action="store_true", help="print CSV")

    limits = command("limits", "rate limits and budgets per key, app, department, tenant")
    sub = limits.add_subparsers(dest="action", required=True, metavar="ACTION")
    put = sub.add_parser("set", help="replace a scope's limits (none given: back to defaults)")
    put.add_argument("kind", choices=SCOPE_KINDS)
    put.add_argument("id")
    for name in LIMIT_FIELDS:
        put.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, metavar="N")
    sub.add_parser("list", help="scopes with stored limits").add_argument(
        "--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, data_dir: Path) -> int:
    data = DataDir(data_dir)
    data.create()
    db = StateDB(data.state_db)
    try:
        if args.command == "usage":
            group_by = parse_group_by(args.group_by)
            rows = usage_report(db.conn, group_by, parse_time(args.since, "since"),
                                parse_time(args.until, "until"))
            if args.json:
                print(json.dumps(rows, indent=2))
            elif args.csv:
                sys.stdout.write(format_csv(rows, group_by))
            else:
                print(format_table(rows, group_by))
            return 0
        store = LimitStore(db)
        if args.action == "set":
            limits = store.set_limits(args.kind, args.id,
                                      **{n: getattr(args, n) for n in LIMIT_FIELDS})
            db.queue_admin_event("policy_changed", "cli", change="limits set",
                                 scope=f"{args.kind}:{args.id}")
            print(json.dumps({"kind": args.kind, "id": args.id, **limits.to_dict()}))
            return 0
        stored = [{"kind": k, "id": i, **lim.to_dict()} for k, i, lim in store.list_limits()]
        if args.json:
            print(json.dumps(stored, indent=2))
        else:
            for item in stored:
                print("  ".join(f"{k}={'-' if v is None else v}" for k, v in item.items()))
        return 0
    except ApplianceError as exc:
        print(f"appliance: error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        db.close()
