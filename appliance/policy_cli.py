"""``appliance policy check FILE`` and ``appliance policy show [--json]``.

``check`` validates a policy file with exactly the rules the daemon, ``policy_file`` and the
sync agent use (errors name the field). ``show`` prints the policy this box starts with from
its configuration (``policy_file`` or ``[policy]``); a running daemon's policy in force,
including one synced from central, is at ``GET /admin/v1/policy``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec

from appliance.config import Config
from appliance.policy import LEVELS, PolicyConfig, PolicyError, load_policy

COMMANDS = ("policy",)


def add_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    policy = command("policy", "validate or show the routing policy")
    sub = policy.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate a policy file and exit")
    check.add_argument("path", type=Path, metavar="FILE")
    show = sub.add_parser("show", help="the policy this box starts with from its config")
    show.add_argument("--json", action="store_true", help="print JSON")


def _describe(policy: PolicyConfig) -> str:
    lines = [f"version {policy.version}" + (f": {policy.description}"
                                            if policy.description else "")]
    for level in LEVELS:
        zones = ", ".join(getattr(policy.allowed_zones, level)) or "none"
        action = getattr(policy.on_forbidden, level) or "default"
        fallback = getattr(policy.fallback_model, level)
        lines.append(f"  {level:<13} zones: {zones:<20} on forbidden: {action}"
                     + (f" (fallback {fallback})" if fallback else ""))
    for override in policy.overrides:
        who = ", ".join(f"{k} {v}" for k, v in (("tenant", override.tenant),
                                                ("department", override.department),
                                                ("app", override.app)) if v is not None)
        lines.append(f"  override for {who}")
    return "\n".join(lines)


def run(args: argparse.Namespace, config: Config) -> int:
    try:
        if args.action == "check":
            policy = load_policy(args.path)
            print(f"{args.path}: OK (version {policy.version}, "
                  f"{len(policy.overrides)} override(s))")
            return 0
        if config.policy_file:
            policy, source = load_policy(Path(config.policy_file)), config.policy_file
        else:
            policy, source = config.policy, "config [policy]"
    except PolicyError as exc:
        print(f"appliance: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"source": source, "policy": msgspec.to_builtins(policy)}, indent=2))
    else:
        print(f"source: {source}\n{_describe(policy)}")
    return 0
