"""Where sync keeps its files in the data directory, and how it writes them.

    <data-dir>/
      secrets/sync.key          the box's Ed25519 private key (PEM, 0600); never leaves the box
      sync/enrollment.json      box id, central's URL and name (present = enrolled)
      sync/tuf/root.json        the trust root received at enrollment (the Updater moves it
                                forward through verified root rotations), with the other TUF
                                metadata the box trusts
      sync/targets/             downloaded targets (hash-checked by the Updater)
      sync/policy/policy.toml   the last known-good policy from central: applied at every start,
                                before the config's ``policy_file`` or ``[policy]``
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SyncPaths:
    data_dir: Path

    @property
    def root(self) -> Path:
        return self.data_dir / "sync"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secrets" / "sync.key"

    @property
    def enrollment_file(self) -> Path:
        return self.root / "enrollment.json"

    @property
    def metadata_dir(self) -> Path:
        return self.root / "tuf"

    @property
    def targets_dir(self) -> Path:
        return self.root / "targets"

    @property
    def policy_dir(self) -> Path:
        return self.root / "policy"

    @property
    def policy_file(self) -> Path:
        return self.policy_dir / "policy.toml"

    def create(self) -> None:
        for directory in (self.root, self.metadata_dir, self.targets_dir, self.policy_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a temporary file, fsync it, rename it over ``path``, fsync the directory: after a
    crash ``path`` holds the old content or the new, never a mix, and the rename is durable."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
