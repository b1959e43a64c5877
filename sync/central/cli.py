"""``appliance central serve|policy|enroll-token|fleet ...``: the control plane's commands.

Stub created by the lead; the central work fills it in. ``run`` gets the raw arguments: the
central server has its own config file and data directory (``--config``/``--data-dir``), not
the appliance's.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def add_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Register ``central`` through the CLI's ``command(name, help)`` factory (it adds
    ``--config`` and ``--data-dir``)."""
    command("central", "central IT's control plane (serve, policy publish, fleet)")


def run(args: argparse.Namespace) -> int:
    print("appliance: error: central is not built yet")
    return 1
