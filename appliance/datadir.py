"""The data directory: its layout, permissions and secrets.

Everything the daemon keeps lives under one directory (0700) so a site can back it up, move it
or wipe it as a unit, and so nothing sensitive ends up elsewhere on the box::

    <data_dir>/
      state.db        SQLite (WAL): keys, usage, outbox, limiter state, policy store
      audit/          encrypted audit segments
      secrets/        master.key, admin.key (0600)
      models/         installed, sha256-verified model artifacts
"""

from __future__ import annotations

import os
import secrets as _random
from dataclasses import dataclass
from pathlib import Path

CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
MASTER_KEY_BYTES = 32


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def state_db(self) -> Path:
        return self.root / "state.db"

    @property
    def audit(self) -> Path:
        return self.root / "audit"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def admin_key_file(self) -> Path:
        return self.secrets / "admin.key"

    def create(self) -> None:
        """Create the layout, tightening permissions on directories that already exist."""
        for directory in (self.root, self.audit, self.secrets, self.models):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(directory, 0o700)

    def read_secret(self, name: str) -> bytes | None:
        """A secret from systemd's credentials directory (LoadCredential=) if it has one by that
        name, else from ``secrets/``; None when neither exists."""
        credentials = os.environ.get(CREDENTIALS_ENV)
        if credentials:
            path = Path(credentials) / name
            if path.is_file():
                return path.read_bytes()
        path = self.secrets / name
        if path.is_file():
            return path.read_bytes()
        return None

    def write_secret(self, name: str, value: bytes) -> Path:
        """Write a secret 0600 atomically; it never exists with looser permissions."""
        path = self.secrets / name
        write_atomic(path, value)
        return path

    def master_key(self) -> bytes:
        """The box's master key (32 random bytes), created on first use. Other keys (API-key
        hashing, audit data keys) are derived from or wrapped by it."""
        value = self.read_secret("master.key")
        if value is None:
            value = _random.token_bytes(MASTER_KEY_BYTES)
            self.write_secret("master.key", value)
        if len(value) != MASTER_KEY_BYTES:
            raise ValueError(f"master.key must hold exactly {MASTER_KEY_BYTES} bytes")
        return value


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a temporary file (created with ``mode``, so it never exists with looser
    permissions), fsync it, rename it over ``path``, fsync the directory: after a crash
    ``path`` holds the old content or the new, never a mix, and the rename is durable."""
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
