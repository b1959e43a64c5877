"""What several benchmarks share: finding the installed models, giving a temporary data
directory its own view of them, and waiting for a process they start."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def default_models_dir() -> Path:
    """$APPLIANCE_TEST_MODELS_DIR, else the tree ``make test`` installs."""
    env = os.environ.get("APPLIANCE_TEST_MODELS_DIR")
    if env:
        return Path(env)
    for candidate in (REPO / ".cache/test-data/models", REPO / ".cache/test-models"):
        if (candidate / "gemma-3-270m").is_dir():
            return candidate
    return REPO / ".cache/test-data/models"


def link_tree(src: Path, dst: Path) -> None:
    """Hardlink (or copy, across file systems) an installed models tree."""
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


def wait_for_line(proc: subprocess.Popen[str], marker: str, log: Path,
                  timeout: float = 120.0) -> str:
    """The rest of the first stdout line starting with ``marker`` (e.g. "appliance: listening
    on "); if the process exits or the time runs out, raise with the tail of its log."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if line.startswith(marker):
                return line[len(marker):].strip()
            if line:
                continue
        if proc.poll() is not None:
            break
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the process did not start (exit {proc.poll()}); its log:\n{tail}")
