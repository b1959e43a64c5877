"""The usage ledger: one row per request, written to ``state.db`` in batches off the request
path.

``record`` only appends to a deque (thread-safe, no lock, no I/O), so a request pays well under
a microsecond or two for it. A writer thread with its own SQLite connection (WAL lets it commit
beside the daemon's connection) wakes every ``batch_interval_ms`` and commits everything
queued in one transaction, together with the per-day token and per-month money counters those
rows add to, so the counters the limiter reads at start always agree with the ledger.

Durability: ``close()`` (a clean shutdown) commits everything recorded before it. After a
SIGKILL, at most the rows recorded since the last commit are lost, i.e. about one batch
interval (plus the time a commit takes); commits are atomic, so nothing is ever half-written.
Power loss can also drop the last commits (``synchronous=NORMAL`` in WAL mode).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque
from pathlib import Path
from typing import NamedTuple

from appliance.limits.store import utc_periods

log = logging.getLogger("appliance.usage")


class UsageRow(NamedTuple):
    """What one request used and where it went. Ids, not names: names can change.

    A named tuple rather than a frozen dataclass: one is built per request, and a frozen
    dataclass sets each of its 18 fields through ``object.__setattr__`` (about 4 us more); the
    tuple is also the row SQLite inserts, as it is."""

    time: float
    request_id: str
    tenant_id: str | None
    department_id: str | None
    app_id: str | None
    key_id: str | None
    user: str | None
    model_requested: str
    model_served: str | None
    provider: str | None
    zone: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_micros: int
    cache_hit: bool
    latency_ms: float
    status: int


_COLUMNS = UsageRow._fields
_INSERT = (f"INSERT INTO usage({', '.join(_COLUMNS)})"
           f" VALUES ({', '.join('?' * len(_COLUMNS))})")
#: The same row queued for central (``sync/outbox.py``) in the same transaction, so a row is in
#: the ledger and the outbox or in neither.
_ENQUEUE = (f"INSERT INTO sync_outbox({', '.join(_COLUMNS)})"
            f" VALUES ({', '.join('?' * len(_COLUMNS))})")
_COUNT = ("INSERT INTO limit_counters(scope_kind, scope_id, span, period, used)"
          " VALUES (?, ?, ?, ?, ?) ON CONFLICT(scope_kind, scope_id, span, period)"
          " DO UPDATE SET used = used + excluded.used")


def _counter_deltas(rows: list[UsageRow]) -> list[tuple[str, str, str, str, int]]:
    deltas: dict[tuple[str, str, str, str], int] = {}
    for row in rows:
        day, month = utc_periods(row.time)
        tokens = row.prompt_tokens + row.completion_tokens
        for kind, ident in (("key", row.key_id), ("app", row.app_id),
                            ("department", row.department_id), ("tenant", row.tenant_id)):
            if ident is None:
                continue
            if tokens:
                deltas[(kind, ident, "day", day)] = deltas.get((kind, ident, "day", day),
                                                               0) + tokens
            if row.cost_micros:
                deltas[(kind, ident, "month", month)] = deltas.get(
                    (kind, ident, "month", month), 0) + row.cost_micros
    return [(*where, used) for where, used in deltas.items()]


class UsageLedger:
    """Batches usage rows into ``state.db``. ``start()`` in the lifespan, ``close()`` at its
    end; ``state.db`` must already be migrated (``StateDB`` does it on open).

    ``enqueue_for_sync`` (set before ``start`` on an enrolled box) also queues every row in the
    sync outbox, in the transaction that records it."""

    def __init__(self, db_path: Path, batch_interval_ms: int = 1000,
                 enqueue_for_sync: bool = False) -> None:
        self._path = db_path
        self.enqueue_for_sync = enqueue_for_sync
        self._interval = batch_interval_ms / 1000.0
        self._queue: deque[UsageRow] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._write_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failures = 0

    def start(self) -> None:
        self._conn = sqlite3.connect(self._path, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._thread = threading.Thread(target=self._run, name="usage-ledger", daemon=True)
        self._thread.start()

    def record(self, row: UsageRow) -> None:
        """Queue a row; never blocks and never does I/O."""
        self._queue.append(row)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Commit everything queued now, in one transaction; returns the rows written. Blocks
        (call it from a thread, or at shutdown)."""
        with self._write_lock:
            if self._conn is None or not self._queue:
                return 0
            batch: list[UsageRow] = []
            while self._queue:
                try:
                    batch.append(self._queue.popleft())
                except IndexError:
                    break
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(_INSERT, batch)
                if self.enqueue_for_sync:
                    self._conn.executemany(_ENQUEUE, batch)
                self._conn.executemany(_COUNT, _counter_deltas(batch))
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                self._queue.extendleft(reversed(batch))  # keep them for the next try
                self.failures += 1
                log.exception("usage ledger: could not write %d rows; will retry", len(batch))
                return 0
            self.written += len(batch)
            return len(batch)

    def close(self) -> None:
        """Stop the writer and commit everything recorded so far (a clean shutdown)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
