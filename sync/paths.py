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

from dataclasses import dataclass
from pathlib import Path

from appliance.datadir import write_atomic

__all__ = ["SyncPaths", "write_atomic"]


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
