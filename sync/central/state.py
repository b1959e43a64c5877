"""Central's data directory and its SQLite database.

::

    <data_dir>/                 0700
      state.db                  SQLite (WAL): boxes (with their audit keys), enrollment
                                tokens, nonces, batches, usage rows, audit checkpoints
      repository/metadata/      the signed TUF metadata boxes download
      repository/targets/       the published policies, named by their sha256
      secrets/admin.token       the admin API's bearer token (0600)
      secrets/tuf/<keyid>.pem   the TUF roles' private keys (0600)

WAL mode, ``synchronous=NORMAL``, numbered migrations applied at open, as the appliance's
``state.db``. The server and the CLI open the same file; SQLite's locking orders their writes.
"""

from __future__ import annotations

import contextlib
import os
import secrets as _random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from appliance.datadir import write_atomic
from appliance.state import open_database

ADMIN_TOKEN_PREFIX = "apt_adm_"

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    -- Only the sha256 of a token is kept; box_id is set once it was used.
    CREATE TABLE enrollment_tokens (
        token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL,
        expires_at REAL NOT NULL, used_at REAL, box_id TEXT
    );
    CREATE TABLE boxes (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, reported_name TEXT,
        public_key TEXT NOT NULL, enrolled_at REAL NOT NULL, revoked_at REAL,
        last_contact REAL, hardware TEXT, policy_version INTEGER, policy_status TEXT,
        outbox_pending INTEGER, model TEXT, appliance_version TEXT, audit_head TEXT
    );
    CREATE TABLE nonces (
        box_id TEXT NOT NULL, nonce TEXT NOT NULL, seen_at REAL NOT NULL,
        PRIMARY KEY (box_id, nonce)
    );
    CREATE INDEX nonces_seen ON nonces(seen_at);
    -- One row per accepted batch: the idempotency key and the stream's sequence.
    CREATE TABLE batches (
        box_id TEXT NOT NULL, stream TEXT NOT NULL, batch_id TEXT NOT NULL,
        seq INTEGER NOT NULL, received_at REAL NOT NULL, items INTEGER NOT NULL,
        PRIMARY KEY (box_id, stream, batch_id)
    );
    CREATE UNIQUE INDEX batches_seq ON batches(box_id, stream, seq);
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY, box_id TEXT NOT NULL, batch_id TEXT NOT NULL,
        time REAL NOT NULL, request_id TEXT,
        tenant_id TEXT, department_id TEXT, app_id TEXT, key_id TEXT, user TEXT,
        model_requested TEXT NOT NULL, model_served TEXT, provider TEXT, zone TEXT,
        prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL, cost_micros INTEGER NOT NULL,
        cache_hit INTEGER NOT NULL, latency_ms REAL NOT NULL, status INTEGER NOT NULL,
        requests INTEGER NOT NULL, aggregate INTEGER NOT NULL
    );
    CREATE INDEX usage_box_time ON usage(box_id, time);
    CREATE TABLE checkpoints (
        box_id TEXT NOT NULL, idx INTEGER NOT NULL, seq INTEGER NOT NULL, head TEXT NOT NULL,
        line TEXT NOT NULL, received_at REAL NOT NULL,
        PRIMARY KEY (box_id, idx)
    );
    """,
    # The box's audit public key (never replaced once set) and the last failure of its
    # checkpoints or of its key, shown as ``audit_status`` (sync/central/audit.py).
    """
    ALTER TABLE boxes ADD COLUMN audit_public_key TEXT;
    ALTER TABLE boxes ADD COLUMN audit_problem TEXT;
    ALTER TABLE boxes ADD COLUMN audit_problem_at REAL;
    """,
)


@dataclass(frozen=True)
class CentralDataDir:
    root: Path

    @property
    def state_db(self) -> Path:
        return self.root / "state.db"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def tuf_keys(self) -> Path:
        return self.secrets / "tuf"

    @property
    def admin_token_file(self) -> Path:
        return self.secrets / "admin.token"

    @property
    def repository(self) -> Path:
        return self.root / "repository"

    def create(self) -> None:
        """Create the layout, tightening permissions on directories that already exist."""
        for directory in (self.root, self.secrets, self.tuf_keys, self.repository,
                          self.repository / "metadata", self.repository / "targets"):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(directory, 0o700)

    def admin_token(self, create: bool) -> str | None:
        """The admin API's bearer token; created (0600) when missing and ``create``."""
        path = self.admin_token_file
        if path.is_file():
            return path.read_text(encoding="ascii").strip()
        if not create:
            return None
        token = ADMIN_TOKEN_PREFIX + _random.token_urlsafe(32)
        write_atomic(path, (token + "\n").encode("ascii"))
        return token


class CentralDB:
    """One connection; statements are short. ``transaction()`` wraps multi-statement writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = open_database(path, MIGRATIONS)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` .. ``COMMIT`` (``ROLLBACK`` on any error): the statements inside
        are applied together or not at all, and no other writer interleaves."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()
