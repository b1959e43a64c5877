"""``appliance enroll URL TOKEN`` and ``appliance sync status|now`` (the edge side).

Stub created by the lead; the edge-sync work fills it in.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from appliance.config import Config

COMMANDS = ("enroll", "sync")


def add_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Register ``enroll`` and ``sync`` through the CLI's ``command(name, help)`` factory
    (it adds ``--config`` and ``--data-dir``)."""
    command("enroll", "enroll this box with central IT's control plane")
    command("sync", "show or trigger synchronisation with central")


def run(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    print("appliance: error: sync is not built yet")
    return 1
