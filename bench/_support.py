"""What several benchmarks share: finding the installed models and giving a temporary data
directory its own view of them."""

from __future__ import annotations

import os
import shutil
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
