"""``appliance central ...``: central IT's control plane.

    appliance central serve [--host H] [--port P]
    appliance central enroll-token create --name BOX [--ttl-hours 24] [--json]
    appliance central policy publish FILE [--json] | policy show [--json]
    appliance central keys rotate ROLE [--json]
    appliance central fleet [--json]
    appliance central boxes revoke BOX_ID

Every command takes ``--config PATH`` (central's TOML, not the appliance's) and
``--data-dir PATH`` (default ``./.central``). ``appliance.cli`` dispatches here before it
loads any appliance configuration. Commands other than ``serve`` work on the data directory
directly, whether or not the server runs (SQLite and the repository lock order the writes).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from sync.central.config import CentralConfig, CentralConfigError, load_config, resolve_data_dir
from sync.central.errors import CentralError
from sync.central.repository import ROLES, PublishedPolicy, Repository, RepositoryError
from sync.central.state import CentralDataDir, CentralDB


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="PATH",
                        help="central's TOML configuration (default: embedded defaults)")
    parser.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, metavar="PATH",
                        help="central's data directory (default ./.central)")
    return parser


def _json_flag(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def add_parser(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Register ``central`` through the CLI's ``command(name, help, data_dir_help)`` factory
    (it adds ``--config`` and ``--data-dir``)."""
    central = command("central", "central IT's control plane (serve, policy publish, fleet)",
                      "central's data directory (default: the config's data_dir, or ./.central)")
    sub = central.add_subparsers(dest="central_command", required=True, metavar="COMMAND")

    serve = _common(sub.add_parser("serve", help="run the control plane server"))
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind; 0 picks a free one")

    tokens = sub.add_parser("enroll-token", help="one-time tokens that enroll a box")
    tokens_sub = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = _json_flag(_common(tokens_sub.add_parser("create", help="create a token")))
    create.add_argument("--name", required=True, help="the box's name in the fleet")
    create.add_argument("--ttl-hours", type=float, default=None,
                        help="hours until the token expires (default 24)")

    policy = sub.add_parser("policy", help="publish and show the signed policy")
    policy_sub = policy.add_subparsers(dest="action", required=True, metavar="ACTION")
    publish = _json_flag(_common(policy_sub.add_parser(
        "publish", help="validate FILE and publish it as a new signed version")))
    publish.add_argument("file", type=Path, metavar="FILE")
    _json_flag(_common(policy_sub.add_parser("show", help="the published policy and roles")))

    keys = sub.add_parser("keys", help="TUF signing keys")
    keys_sub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    rotate = _json_flag(_common(keys_sub.add_parser(
        "rotate", help="replace a role's keys through a new root version")))
    rotate.add_argument("role", choices=ROLES, metavar="ROLE", help=", ".join(ROLES))

    _json_flag(_common(sub.add_parser("fleet", help="every enrolled box and its state")))

    boxes = sub.add_parser("boxes", help="manage enrolled boxes")
    boxes_sub = boxes.add_subparsers(dest="action", required=True, metavar="ACTION")
    revoke = _common(boxes_sub.add_parser("revoke", help="refuse every later request of a box"))
    revoke.add_argument("box_id", metavar="BOX_ID")


def _fail(message: str) -> int:
    print(f"appliance: error: {message}", file=sys.stderr)
    return 1


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except CentralConfigError as exc:
        return _fail(str(exc))
    data_dir = resolve_data_dir(args.data_dir, config)
    try:
        if args.central_command == "serve":
            return _serve(args, config, data_dir)
        data = CentralDataDir(data_dir)
        data.create()
        if args.central_command in ("policy", "keys"):
            return _repository_command(args, Repository(data, config.tuf))
        db = CentralDB(data.state_db)
        try:
            return _db_command(args, config, db)
        finally:
            db.close()
    except (RepositoryError, CentralError, ValueError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.filename or data_dir}: {exc.strerror}")


def _serve(args: argparse.Namespace, config: CentralConfig, data_dir: Path) -> int:
    from sync.central.server import serve

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        config = msgspec.structs.replace(
            config, server=msgspec.structs.replace(config.server, **overrides))
        try:  # re-validate (e.g. a port out of range) through the same rules as the file
            config = msgspec.convert(msgspec.to_builtins(config), CentralConfig)
        except msgspec.ValidationError as exc:
            return _fail(f"invalid command-line value: {exc}")
    return serve(config, data_dir)


def _policy_dict(info: PublishedPolicy) -> dict[str, Any]:
    return {"version": info.version, "sha256": info.sha256, "length": info.length,
            "published_at": info.published_at, "targets_version": info.targets_version}


def _repository_command(args: argparse.Namespace, repo: Repository) -> int:
    from appliance.policy import PolicyError, parse_policy

    repo.init()
    if args.central_command == "keys":
        version = repo.rotate(args.role)
        if args.json:
            _print_json({"role": args.role, "root_version": version, "roles": repo.status()})
        else:
            print(f"rotated the keys of `{args.role}`: root version {version} names them; "
                  "the old private keys were deleted")
        return 0
    if args.action == "publish":
        try:
            data = args.file.read_bytes()
        except OSError as exc:
            return _fail(f"{args.file}: cannot read policy: {exc.strerror}")
        try:
            policy = parse_policy(data, str(args.file))
        except PolicyError as exc:
            return _fail(str(exc))
        info = repo.publish(data, policy.version)
        if args.json:
            _print_json(_policy_dict(info))
        else:
            print(f"published policy version {info.version} (sha256 {info.sha256[:16]}…, "
                  f"targets metadata version {info.targets_version})")
        return 0
    current = repo.policy()
    roles = repo.status()
    if args.json:
        content = repo.policy_bytes()
        _print_json({"policy": None if current is None else _policy_dict(current),
                     "content": None if content is None else content.decode("utf-8"),
                     "roles": roles})
        return 0
    if current is None:
        print("no policy published yet (appliance central policy publish FILE)")
    else:
        print(f"policy version {current.version}, published {_iso(current.published_at)}, "
              f"sha256 {current.sha256}")
    for role, state in roles.items():
        print(f"  {role:<10} version {state['version']:<4} expires {state['expires']}  "
              f"{state['threshold']} of {len(state['keyids'])} keys")
    return 0


def _db_command(args: argparse.Namespace, config: CentralConfig, db: CentralDB) -> int:
    from sync.central import enrollment, fleet

    if args.central_command == "enroll-token":
        ttl = args.ttl_hours if args.ttl_hours is not None else config.enrollment.default_ttl_hours
        token = enrollment.create_token(db, args.name, ttl)
        if args.json:
            _print_json({"token": token.token, "name": token.name,
                         "expires_at": token.expires_at})
        else:
            print(f"enrollment token for {token.name} (single use, expires "
                  f"{_iso(token.expires_at)}):\n  {token.token}\n"
                  f"on the box: appliance enroll CENTRAL_URL {token.token}")
        return 0
    if args.central_command == "boxes":
        enrollment.revoke_box(db, args.box_id)
        print(f"revoked {args.box_id}: central refuses its requests from now on")
        return 0
    boxes = fleet.fleet(db.conn)
    if args.json:
        _print_json({"boxes": boxes})
    else:
        print(fleet.format_fleet(boxes))
    return 0
