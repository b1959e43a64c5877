"""``appliance tenants|departments|apps|keys ...``: the admin API's operations, for whoever
holds the data directory (the box's own administrator, or a script run by systemd).

They write ``state.db`` directly; a running daemon sees the change on its next request
(revocations included) because it looks every key up again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.datadir import DataDir
from appliance.errors import ApplianceError
from appliance.identity import LEVELS, IdentityStore, Kind
from appliance.keys import ROLES, KeyStore
from appliance.state import StateDB

PLURALS: dict[str, Kind] = {"tenants": "tenant", "departments": "department", "apps": "app"}


def add_parsers(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    for plural, kind in PLURALS.items():
        parent = LEVELS[kind].parent_kind
        sub = command(plural, f"manage {plural}").add_subparsers(dest="action", required=True,
                                                                 metavar="ACTION")
        create = sub.add_parser("create", help=f"create a {kind}")
        create.add_argument("name")
        if parent:
            create.add_argument(f"--{parent}", required=True, help=f"its {parent} (id or name)")
        listing = sub.add_parser("list", help=f"list {plural}")
        if parent:
            listing.add_argument(f"--{parent}", help=f"only this {parent}'s")
        listing.add_argument("--all", action="store_true", help="include disabled ones")
        sub.add_parser("show", help=f"show a {kind}").add_argument("id")
        update = sub.add_parser("update", help=f"rename a {kind}")
        update.add_argument("id")
        update.add_argument("--name", required=True)
        sub.add_parser("revoke", help=f"disable a {kind} and every key below it").add_argument(
            "id")
        for p in sub.choices.values():
            p.add_argument("--json", action="store_true", help="print JSON")

    sub = command("keys", "manage API keys").add_subparsers(dest="action", required=True,
                                                            metavar="ACTION")
    create = sub.add_parser("create", help="create a key (its value is shown once)")
    create.add_argument("name")
    create.add_argument("--role", choices=ROLES, default="client")
    create.add_argument("--app", help="the app a client key belongs to (id or name)")
    create.add_argument("--scope", action="append", dest="scopes", metavar="MODEL",
                        help="a model the key may use (repeat; default: all)")
    create.add_argument("--expires-in-days", type=float, metavar="DAYS")
    listing = sub.add_parser("list", help="list keys")
    listing.add_argument("--app", help="only this app's keys")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    sub.add_parser("show", help="show a key").add_argument("id")
    update = sub.add_parser("update", help="rename, rescope or re-expire a key")
    update.add_argument("id")
    update.add_argument("--name")
    update.add_argument("--scope", action="append", dest="scopes", metavar="MODEL")
    update.add_argument("--expires-in-days", type=float, metavar="DAYS")
    sub.add_parser("revoke", help="revoke a key").add_argument("id")
    for p in sub.choices.values():
        p.add_argument("--json", action="store_true", help="print JSON")


def _print(args: argparse.Namespace, items: list[dict[str, Any]], columns: list[str]) -> None:
    if args.json:
        print(json.dumps(items if args.action == "list" else items[0], indent=2))
        return
    print("  ".join(f"{c.upper():<20}" for c in columns).rstrip())
    for item in items:
        print("  ".join(f"{str(item.get(c) if item.get(c) is not None else '-'):<20}"
                        for c in columns).rstrip())


def _expiry(days: float | None) -> float | None:
    return None if days is None else time.time() + days * 86400


def run(args: argparse.Namespace, data_dir: Path) -> int:
    data = DataDir(data_dir)
    data.create()
    db = StateDB(data.state_db)
    identity = IdentityStore(db)
    try:
        if args.command in PLURALS:
            kind = PLURALS[args.command]
            parent = LEVELS[kind].parent_kind
            if args.action == "create":
                entities = [identity.create(kind, args.name, getattr(args, parent or "", None))]
                db.queue_admin_event("config_changed", "cli", change=f"{kind} created",
                                     id=entities[0].id)
            elif args.action == "list":
                entities = identity.list(kind, getattr(args, parent or "", None), args.all)
            elif args.action == "show":
                entities = [identity.get(kind, args.id)]
            elif args.action == "update":
                entities = [identity.rename(kind, args.id, args.name)]
                db.queue_admin_event("config_changed", "cli", change=f"{kind} renamed",
                                     id=entities[0].id)
            else:
                entities = [identity.disable(kind, args.id)]
                db.queue_admin_event("config_changed", "cli", change=f"{kind} disabled",
                                     id=entities[0].id)
            _print(args, [e.to_dict() for e in entities],
                   ["id", "name", "parent_id", "disabled_at"])
            return 0
        keys = KeyStore(db, data.master_key())
        if args.action == "create":
            app = identity.get("app", args.app).id if args.app else None
            plaintext, key = keys.create(args.name, args.role, tuple(args.scopes or ["*"]),
                                         _expiry(args.expires_in_days), app)
            db.queue_admin_event("key_created", "cli", key_id=key.id, role=key.role)
            if not args.json:
                print(f"{key.id}: {plaintext}\n(the key is shown only this once)")
                return 0
            print(json.dumps({**key.to_dict(), "key": plaintext}, indent=2))
            return 0
        if args.action == "list":
            app = identity.get("app", args.app).id if args.app else None
            found = keys.list(app, args.all)
        elif args.action == "show":
            found = [keys.get(args.id)]
        elif args.action == "update":
            found = [keys.update(args.id, name=args.name,
                                 scopes=tuple(args.scopes) if args.scopes else None,
                                 expires_at=_expiry(args.expires_in_days))]
            db.queue_admin_event("config_changed", "cli", change="key updated", id=args.id)
        else:
            found = [keys.revoke(args.id)]
            db.queue_admin_event("key_revoked", "cli", key_id=found[0].id)
        _print(args, [k.to_dict() for k in found],
               ["id", "name", "role", "app_id", "display", "revoked_at"])
        return 0
    except ApplianceError as exc:
        print(f"appliance: error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        db.close()
