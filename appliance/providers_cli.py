"""``appliance providers status [--json] [--url URL]``: the running daemon's view of its
providers (circuit state, failures, latency), from ``GET /admin/v1/providers``.

Circuit state lives in the daemon's memory only, so unlike the other admin commands this one
asks the daemon over HTTP: at ``server.host``/``server.port`` from the config (or ``--url``),
with the bootstrap admin key from ``<data-dir>/secrets/admin.key``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from appliance.config import Config
from appliance.datadir import DataDir

COMMANDS = ("providers",)


def add_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    sub = command("providers", "the running daemon's providers: circuits and latency"
                  ).add_subparsers(dest="action", required=True, metavar="ACTION")
    status = sub.add_parser("status", help="circuit state and measured latency per provider")
    status.add_argument("--json", action="store_true", help="print the route's JSON")
    status.add_argument("--url", metavar="URL",
                        help="the daemon's base URL (default: from server.host/server.port)")


def daemon_url(config: Config) -> str:
    host = config.server.host
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: ask it on loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.server.port}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_table(providers: list[dict[str, Any]]) -> str:
    head = (f"{'PROVIDER':<16} {'ZONE':<6} {'KIND':<17} {'CIRCUIT':<9} {'FAILS':>5} "
            f"{'RETRY IN':>8}  {'MODEL':<24} {'TTFT EWMA MS':>12} {'TTFT P95 MS':>11} "
            f"{'TOK/S EWMA':>10} {'TOK/S P95':>9}")
    lines = [head]
    for item in providers:
        circuit = item["circuit"]
        retry = circuit["retry_in_seconds"]
        left = (f"{item['name']:<16} {item['zone']:<6} {item['kind']:<17} "
                f"{circuit['state']:<9} {circuit['consecutive_failures']:>5} "
                f"{'-' if retry is None else f'{retry:.0f}s':>8}")
        for index, model in enumerate(item["models"] or ["-"]):
            measured = item["latency"].get(model) or {}
            ttft = measured.get("ttft_ms") or {}
            rate = measured.get("tokens_per_second") or {}
            lines.append(f"{left if index == 0 else ' ' * len(left)}  {model:<24} "
                         f"{_ms(ttft.get('ewma')):>12} {_ms(ttft.get('p95')):>11} "
                         f"{_rate(rate.get('ewma')):>10} {_rate(rate.get('p95')):>9}")
        if item.get("proxy"):
            lines.append(f"  {item['name']}: through the proxy {item['proxy']}")
        if circuit["reason"]:
            lines.append(f"  {item['name']}: {circuit['reason']}")
    return "\n".join(lines)


def run(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    key_file = DataDir(data_dir).admin_key_file
    try:
        key = key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        print(f"appliance: error: cannot read the admin key {key_file}: {exc.strerror}",
              file=sys.stderr)
        return 1
    url = (args.url or daemon_url(config)).rstrip("/") + "/admin/v1/providers"
    try:
        response = httpx.get(url, headers={"authorization": f"Bearer {key}"}, timeout=10)
    except httpx.HTTPError as exc:
        print(f"appliance: error: the daemon at {url} cannot be reached ({exc}); is it "
              "running?", file=sys.stderr)
        return 1
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        print(f"appliance: error: {url}: HTTP {response.status_code}: {message}",
              file=sys.stderr)
        return 1
    body = response.json()
    print(json.dumps(body, indent=2) if args.json else format_table(body["data"]))
    return 0
