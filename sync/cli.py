"""``appliance enroll URL TOKEN [--name NAME]`` and ``appliance sync status|now`` (the edge side).

    appliance enroll https://central.example TOKEN [--name NAME] [--json]
    appliance sync status [--json]      from state.db: works whether the daemon runs or not
    appliance sync now [--json] [--url URL]
                                        asks the running daemon (``POST /admin/v1/sync/now``,
                                        at server.host/server.port or --url, with the admin key
                                        in <data-dir>/secrets/admin.key) to run every job now

Enrolling writes the box's key and trust root and queues an ``enrolled`` audit event (the
daemon moves it into the audit log); the daemon starts syncing at its next start.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from appliance.config import Config
from appliance.datadir import DataDir
from appliance.providers_cli import daemon_url
from appliance.state import StateDB
from sync.client import CentralError
from sync.enrollment import EnrollmentError, enroll
from sync.status import format_status, read_status

COMMANDS = ("enroll", "sync")


def add_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Register ``enroll`` and ``sync`` through the CLI's ``command(name, help)`` factory
    (it adds ``--config`` and ``--data-dir``)."""
    enroll_cmd = command("enroll", "enroll this box with central IT's control plane")
    enroll_cmd.add_argument("url", metavar="URL", help="central's base URL")
    enroll_cmd.add_argument("token", metavar="TOKEN",
                            help="the one-time token from `appliance central enroll-token`")
    enroll_cmd.add_argument("--name", help="the name this box reports (default: host name)")
    enroll_cmd.add_argument("--json", action="store_true", help="print JSON")
    sync = command("sync", "show or trigger synchronisation with central")
    actions = sync.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="last contact, errors, policy, outbox")
    _common(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    now = actions.add_parser("now", help="ask the running daemon to sync everything now")
    _common(now)
    now.add_argument("--json", action="store_true", help="print JSON")
    now.add_argument("--url", metavar="URL",
                     help="the daemon's base URL (default: from server.host/server.port)")


def _common(parser: argparse.ArgumentParser) -> None:
    """``--config``/``--data-dir`` after the action's name too (as the CLI's ``_common``)."""
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="PATH",
                        help="TOML configuration file (default: embedded defaults)")
    parser.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, metavar="PATH",
                        help="data directory (default: $APPLIANCE_DATA_DIR or ./.appliance)")


def _fail(message: str) -> int:
    print(f"appliance: error: {message}", file=sys.stderr)
    return 1


def _hardware() -> dict[str, Any]:
    from hardware import choose_profile, probe, report_dict

    try:
        info = probe()
        return report_dict(info, choose_profile(info))
    except Exception:  # noqa: BLE001 - a courtesy for the fleet view, never a reason to fail
        return {}


def cmd_enroll(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    data = DataDir(data_dir)
    data.create()
    name = args.name or socket.gethostname()
    try:
        enrollment = enroll(data_dir, args.url, args.token, name, _hardware(),
                            config.sync.timeout_seconds)
    except (EnrollmentError, CentralError) as exc:
        return _fail(f"enrollment failed: {exc}")
    db = StateDB(data.state_db)
    try:
        db.queue_admin_event("enrolled", "cli", box_id=enrollment.box_id,
                             central=enrollment.central_url, name=enrollment.name)
    finally:
        db.close()
    started = _start_running_daemon(config, data_dir)
    if args.json:
        print(json.dumps({"box_id": enrollment.box_id, "central_url": enrollment.central_url,
                          "central_name": enrollment.central_name, "name": enrollment.name,
                          "daemon_syncing": started}))
    else:
        print(f"enrolled as {enrollment.box_id} with {enrollment.central_url}"
              + (f" ({enrollment.central_name})" if enrollment.central_name else "")
              + ("; the running daemon has started syncing" if started else
                 "; the daemon starts syncing when it (re)starts"))
    return 0


def _start_running_daemon(config: Config, data_dir: Path) -> bool:
    """Ask a daemon already running on this data directory to start its sync agent (``POST
    /admin/v1/sync/now``); False when none answers, which is no error: it syncs once
    started."""
    try:
        key = DataDir(data_dir).admin_key_file.read_text(encoding="utf-8").strip()
        response = httpx.post(daemon_url(config).rstrip("/") + "/admin/v1/sync/now",
                              headers={"authorization": f"Bearer {key}"},
                              timeout=config.sync.timeout_seconds * 8 + 30)
    except (OSError, httpx.HTTPError):
        return False
    return response.status_code == 200


def cmd_status(args: argparse.Namespace, data_dir: Path) -> int:
    data = DataDir(data_dir)
    if data.state_db.exists():
        StateDB(data.state_db).close()  # brings an older database to the current schema
    try:
        status = read_status(data_dir)
    except EnrollmentError as exc:
        return _fail(str(exc))
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def cmd_now(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    key_file = DataDir(data_dir).admin_key_file
    try:
        key = key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        return _fail(f"cannot read the admin key {key_file}: {exc.strerror}")
    url = (args.url or daemon_url(config)).rstrip("/") + "/admin/v1/sync/now"
    try:  # each job may wait for central up to its timeout
        response = httpx.post(url, headers={"authorization": f"Bearer {key}"},
                              timeout=config.sync.timeout_seconds * 8 + 30)
    except httpx.HTTPError as exc:
        return _fail(f"the daemon at {url} cannot be reached ({exc}); is it running?")
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        try:
            message = body["error"]["message"]
        except (KeyError, TypeError):
            message = response.text[:200]
        return _fail(f"{url}: HTTP {response.status_code}: {message}")
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        for job, error in body["errors"].items():
            print(f"{job}: {'ok' if error is None else 'failed: ' + error}")
        print(format_status(body["status"]))
    return 0 if body["ok"] else 1


def run(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    if args.command == "enroll":
        return cmd_enroll(args, config, data_dir)
    if args.action == "status":
        return cmd_status(args, data_dir)
    return cmd_now(args, config, data_dir)
