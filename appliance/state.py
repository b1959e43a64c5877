"""``state.db``: the appliance's SQLite database.

WAL mode so readers never wait on the writer; ``synchronous=NORMAL`` is durable across process
crashes in WAL mode (only power loss can drop the last commits). Schema changes are numbered
migrations applied in order at open, so an upgraded appliance opens an older database.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

MIGRATIONS: tuple[str, ...] = (
    # 1: API keys. Only a keyed hash of each key is stored.
    """
    CREATE TABLE api_keys (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        key_hash     BLOB NOT NULL UNIQUE,
        display      TEXT NOT NULL,
        role         TEXT NOT NULL,
        scopes       TEXT NOT NULL DEFAULT '*',
        created_at   REAL NOT NULL,
        expires_at   REAL,
        revoked_at   REAL,
        last_used_at REAL
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: who is asking. Tenants contain departments, departments contain apps, apps hold keys.
    # Keys without an app are the appliance's own (admin, operator, auditor).
    """
    CREATE TABLE tenants (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at REAL NOT NULL,
        disabled_at REAL
    );
    CREATE TABLE departments (
        id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id),
        name TEXT NOT NULL, created_at REAL NOT NULL, disabled_at REAL,
        UNIQUE (tenant_id, name)
    );
    CREATE TABLE apps (
        id TEXT PRIMARY KEY, department_id TEXT NOT NULL REFERENCES departments(id),
        name TEXT NOT NULL, created_at REAL NOT NULL, disabled_at REAL,
        UNIQUE (department_id, name)
    );
    ALTER TABLE api_keys ADD COLUMN app_id TEXT REFERENCES apps(id);
    CREATE INDEX api_keys_app ON api_keys(app_id);
    """,
    # 3: limits and budgets (appliance/limits). Limit definitions per scope (key, app,
    # department, tenant; NULL = the config default), the per-day token and per-month money
    # counters (UTC calendar periods; written with the usage rows they sum, in one
    # transaction), and the usage ledger.
    """
    CREATE TABLE limits (
        scope_kind TEXT NOT NULL, scope_id TEXT NOT NULL,
        rpm INTEGER, tpm INTEGER, tpd INTEGER, monthly_budget_micros INTEGER,
        updated_at REAL NOT NULL,
        PRIMARY KEY (scope_kind, scope_id)
    );
    CREATE TABLE limit_counters (
        scope_kind TEXT NOT NULL, scope_id TEXT NOT NULL,
        span TEXT NOT NULL, period TEXT NOT NULL, used INTEGER NOT NULL,
        PRIMARY KEY (scope_kind, scope_id, span, period)
    );
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL, request_id TEXT NOT NULL,
        tenant_id TEXT, department_id TEXT, app_id TEXT, key_id TEXT, user TEXT,
        model_requested TEXT NOT NULL, model_served TEXT, provider TEXT, zone TEXT,
        prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL DEFAULT 0, cost_micros INTEGER NOT NULL,
        cache_hit INTEGER NOT NULL DEFAULT 0, latency_ms REAL NOT NULL, status INTEGER NOT NULL
    );
    CREATE INDEX usage_time ON usage(time);
    """,
    # 4: administrative events made outside the daemon (the CLI), waiting to be written to
    # the audit log, which only the daemon's writer may append to. Drained, then deleted.
    """
    CREATE TABLE audit_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL,
        actor TEXT NOT NULL, detail TEXT NOT NULL
    );
    """,
    # 5: sync with central (sync/outbox.py). Usage rows waiting for central's acknowledgement
    # (written in the ledger's transaction; ``requests``/``aggregate`` once compacted into
    # hourly sums), the batch in flight per stream (its id and sequence number persisted
    # before it is sent, so a retry after a crash is a replay central recognises), and the
    # agent's state (cursors, last contact, last error, policy status).
    """
    CREATE TABLE sync_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL, request_id TEXT,
        tenant_id TEXT, department_id TEXT, app_id TEXT, key_id TEXT, user TEXT,
        model_requested TEXT NOT NULL, model_served TEXT, provider TEXT, zone TEXT,
        prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL DEFAULT 0, cost_micros INTEGER NOT NULL,
        cache_hit INTEGER NOT NULL DEFAULT 0, latency_ms REAL NOT NULL, status INTEGER NOT NULL,
        requests INTEGER NOT NULL DEFAULT 1, aggregate INTEGER NOT NULL DEFAULT 0,
        batch_id TEXT
    );
    CREATE INDEX sync_outbox_batch ON sync_outbox(batch_id);
    CREATE TABLE sync_batches (
        stream TEXT PRIMARY KEY, batch_id TEXT NOT NULL, seq INTEGER NOT NULL,
        payload BLOB, last_index INTEGER, last_offset INTEGER, created_at REAL NOT NULL
    );
    CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
)


def open_database(path: Path, migrations: tuple[str, ...],
                  foreign_keys: bool = False) -> sqlite3.Connection:
    """Open (creating it 0600) a SQLite database in WAL mode with ``synchronous=NORMAL`` and
    a busy timeout, and apply the numbered ``migrations`` it has not had yet, each in its own
    transaction with ``user_version`` (shared by ``state.db`` and central's database)."""
    existed = path.exists()
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    if not existed:
        path.chmod(0o600)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if foreign_keys:
        conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(migrations[version:], start=version + 1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
    return conn


class StateDB:
    """One connection owned by the event loop's thread; statements here are short."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = open_database(path, MIGRATIONS, foreign_keys=True)

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def check_writable(self) -> None:
        """Raise if a write cannot be committed now (disk full, read-only mount, lock held)."""
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES('last_ready_check', ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (str(time.time()),),
        )

    def queue_admin_event(self, kind: str, actor: str, **detail: str) -> None:
        """Queue an administrative event for the audit log (see ``Runtime.drain_admin_events``)."""
        self.conn.execute("INSERT INTO audit_outbox(time, kind, actor, detail) VALUES (?,?,?,?)",
                          (time.time(), kind, actor, json.dumps(detail)))

    def close(self) -> None:
        self.conn.close()
