"""The durable outbox: what the box owes central, kept until central acknowledges it.

Two streams, each sent in order, one batch at a time:

- ``usage``: rows of the ``sync_outbox`` table in ``state.db``. The usage ledger inserts each
  row there in the same transaction that records it in the ledger (``UsageLedger.flush``), so
  a row is never in one without the other. A row is deleted only in the transaction that
  records central's acknowledgement of its batch.
- ``checkpoints``: the signed audit checkpoints. Their durable queue is the audit writer's
  append-only ``audit/checkpoints.jsonl`` itself (never rewritten, except that recovery cuts
  a torn last line); ``state.db`` keeps only a cursor (the byte offset and index of the last
  acknowledged line), so no checkpoint is ever dropped however long central is away.

A batch gets its id and sequence number when it is formed, and both are committed
(``sync_batches``) before it is sent; until it is acknowledged every retry, after a timeout
or a SIGKILL and restart, sends the same id, sequence number and rows, which central answers
as a duplicate if it had already stored them. Sequence numbers count batches per stream from
1; the next batch is ``acked + 1``.

The outbox is bounded (``outbox_max_rows``): past the bound the oldest rows not in flight are
merged into per-hour aggregates (same tenant, department, app, key, models, provider, zone,
status and cache hit; sums of tokens, cost and latency; ``requests`` their count; ``aggregate``
true; no request id or user), so central's totals stay exact while the detail of old rows is given up. Nothing is
dropped. The bound is enforced at each usage push attempt, so it may be exceeded by what
arrives between two attempts.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

CHECKPOINTS_FILE = "checkpoints.jsonl"

USAGE_FIELDS = ("time", "request_id", "tenant_id", "department_id", "app_id", "key_id", "user",
                "model_requested", "model_served", "provider", "zone", "prompt_tokens",
                "completion_tokens", "cached_tokens", "cost_micros", "cache_hit", "latency_ms",
                "status", "requests", "aggregate")
#: What rows must share to be merged into one aggregate (besides their hour).
_GROUP = ("tenant_id", "department_id", "app_id", "key_id", "model_requested", "model_served",
          "provider", "zone", "status", "cache_hit")
_SUMMED = ("prompt_tokens", "completion_tokens", "cached_tokens", "cost_micros", "latency_ms",
           "requests")
_BOOLEANS = ("cache_hit", "aggregate")


class _Index(msgspec.Struct):
    index: int


@dataclass(frozen=True, slots=True)
class Batch:
    """One request's worth of a stream, as committed before its first send."""

    stream: str
    batch_id: str
    seq: int
    body: bytes
    count: int


class Outbox:
    """Owns its own connection to ``state.db`` (methods block: the agent calls them from a
    worker thread; a lock serialises them)."""

    def __init__(self, db_path: Path, audit_dir: Path, max_rows: int = 100_000) -> None:
        self.audit_dir = audit_dir
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # state ---------------------------------------------------------------------------------

    def get_state(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            return read_state(self._conn, key, default)

    def all_state(self) -> dict[str, str]:
        with self._lock:
            return dict(self._conn.execute("SELECT key, value FROM sync_state").fetchall())

    def set_state(self, values: dict[str, str | int | float | None]) -> None:
        """Write agent state in one transaction (``None`` deletes a key)."""
        with self._lock, _transaction(self._conn):
            write_state(self._conn, values)

    # usage ---------------------------------------------------------------------------------

    def pending_usage(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM sync_outbox").fetchone()[0])

    def in_flight_usage(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM sync_outbox"
                                          " WHERE batch_id IS NOT NULL").fetchone()[0])

    def compact(self) -> int:
        """Merge the oldest rows into hourly aggregates when the outbox is over its bound;
        returns how many rows fewer it holds."""
        with self._lock:
            total = int(self._conn.execute("SELECT count(*) FROM sync_outbox").fetchone()[0])
            if total <= self.max_rows:
                return 0
            with _transaction(self._conn):
                return self._compact_oldest(total - self.max_rows // 2)

    def _compact_oldest(self, count: int) -> int:
        cursor = self._conn.execute(
            f"SELECT id, time, {', '.join(_GROUP + _SUMMED)} FROM sync_outbox"
            " WHERE batch_id IS NULL ORDER BY id LIMIT ?", (count,))
        groups: dict[tuple[Any, ...], list[Any]] = {}
        ids: list[int] = []
        for row in cursor:
            ids.append(row[0])
            hour = float(int(row[1] // 3600) * 3600)
            key = (hour, *row[2:2 + len(_GROUP)])
            sums = row[2 + len(_GROUP):]
            group = groups.get(key)
            if group is None:
                groups[key] = [row[0], *sums]
            else:
                for i, value in enumerate(sums, start=1):
                    group[i] += value
        if len(groups) == len(ids):
            return 0  # nothing to merge
        self._conn.executemany("DELETE FROM sync_outbox WHERE id = ?", [(i,) for i in ids])
        columns = ("id", "time", "request_id", *_GROUP, *_SUMMED, "aggregate")
        self._conn.executemany(
            f"INSERT INTO sync_outbox({', '.join(columns)})"
            f" VALUES ({', '.join('?' * len(columns))})",
            [(first, key[0], None, *key[1:], *sums, 1)
             for key, (first, *sums) in groups.items()])
        return len(ids) - len(groups)

    def usage_batch(self, size: int) -> Batch | None:
        """The batch in flight, else a new one of the oldest ``size`` rows (committed before
        it is returned); None when nothing is queued."""
        with self._lock:
            found = self._in_flight("usage")
            if found is not None:
                batch_id, seq, _ = found
            else:
                with _transaction(self._conn):
                    ids = [r[0] for r in self._conn.execute(
                        "SELECT id FROM sync_outbox WHERE batch_id IS NULL ORDER BY id LIMIT ?",
                        (size,))]
                    if not ids:
                        return None
                    batch_id, seq = self._new_batch("usage", None, None, None)
                    self._conn.execute(
                        "UPDATE sync_outbox SET batch_id = ? WHERE id BETWEEN ? AND ?"
                        " AND batch_id IS NULL", (batch_id, ids[0], ids[-1]))
            rows = [_usage_dict(r) for r in self._conn.execute(
                f"SELECT {', '.join(USAGE_FIELDS)} FROM sync_outbox WHERE batch_id = ?"
                " ORDER BY id", (batch_id,))]
        body = msgspec.json.encode({"batch_id": batch_id, "seq": seq, "rows": rows})
        return Batch("usage", batch_id, seq, body, len(rows))

    # checkpoints ---------------------------------------------------------------------------

    def pending_checkpoints(self) -> int:
        with self._lock:
            offset = int(read_state(self._conn, "checkpoints.acked_offset", "0") or 0)
            index = int(read_state(self._conn, "checkpoints.acked_index", "0") or 0)
        return len(self._lines_after(offset, index, limit=None)[0])

    def checkpoint_batch(self, size: int) -> Batch | None:
        """The batch in flight, else a new one of the next ``size`` complete lines."""
        with self._lock:
            found = self._in_flight("checkpoints")
            if found is not None:
                batch_id, seq, payload = found
                assert payload is not None
                return Batch("checkpoints", batch_id, seq, payload,
                             len(msgspec.json.decode(payload)["checkpoints"]))
            offset = int(read_state(self._conn, "checkpoints.acked_offset", "0") or 0)
            index = int(read_state(self._conn, "checkpoints.acked_index", "0") or 0)
            lines, last_index, end = self._lines_after(offset, index, limit=size)
            if not lines:
                return None
            with _transaction(self._conn):
                batch_id = uuid.uuid4().hex
                seq = int(read_state(self._conn, "checkpoints.acked_seq", "0") or 0) + 1
                body = msgspec.json.encode({"batch_id": batch_id, "seq": seq, "checkpoints": [
                    {"line": line.decode("utf-8", "replace").rstrip("\n")} for line in lines]})
                self._new_batch("checkpoints", body, last_index, end, batch_id, seq)
        return Batch("checkpoints", batch_id, seq, body, len(lines))

    def _lines_after(self, offset: int, index: int,
                     limit: int | None) -> tuple[list[bytes], int, int]:
        """Complete lines after the cursor, the index of the last one and the offset after
        it. A file shorter than the cursor was rewritten: find the place by index instead."""
        path = self.audit_dir / CHECKPOINTS_FILE
        try:
            with path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < offset:
                    offset = 0
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return [], index, offset
        lines: list[bytes] = []
        position, last = offset, index
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # being written (or torn): sent once complete
            position += len(line)
            try:
                number = msgspec.json.decode(line, type=_Index).index
            except msgspec.MsgspecError:
                number = last + 1  # damaged: central gets it as it is, as evidence
            if number <= index:
                continue  # acknowledged before the file was rewritten
            lines.append(line)
            last = number
            if limit is not None and len(lines) >= limit:
                break
        return lines, last, position

    # batches -------------------------------------------------------------------------------

    def _in_flight(self, stream: str) -> tuple[str, int, bytes | None] | None:
        row = self._conn.execute("SELECT batch_id, seq, payload FROM sync_batches"
                                 " WHERE stream = ?", (stream,)).fetchone()
        return None if row is None else (row[0], int(row[1]), row[2])

    def _new_batch(self, stream: str, payload: bytes | None, last_index: int | None,
                   last_offset: int | None, batch_id: str | None = None,
                   seq: int | None = None) -> tuple[str, int]:
        batch_id = batch_id or uuid.uuid4().hex
        if seq is None:
            seq = int(read_state(self._conn, f"{stream}.acked_seq", "0") or 0) + 1
        self._conn.execute(
            "INSERT INTO sync_batches(stream, batch_id, seq, payload, last_index, last_offset,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (stream, batch_id, seq, payload, last_index, last_offset, time.time()))
        return batch_id, seq

    def acknowledge(self, batch: Batch) -> None:
        """Central stored ``batch``: forget it, in one transaction."""
        with self._lock, _transaction(self._conn):
            row = self._conn.execute("SELECT batch_id, last_index, last_offset FROM sync_batches"
                                     " WHERE stream = ?", (batch.stream,)).fetchone()
            if row is None or row[0] != batch.batch_id:
                return  # acknowledged already
            if batch.stream == "usage":
                self._conn.execute("DELETE FROM sync_outbox WHERE batch_id = ?", (batch.batch_id,))
            else:
                write_state(self._conn, {"checkpoints.acked_index": row[1],
                                         "checkpoints.acked_offset": row[2]})
            write_state(self._conn, {f"{batch.stream}.acked_seq": batch.seq})
            self._conn.execute("DELETE FROM sync_batches WHERE stream = ?", (batch.stream,))


def _usage_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    out = dict(zip(USAGE_FIELDS, row, strict=True))
    for name in _BOOLEANS:
        out[name] = bool(out[name])
    return out


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit
    connection."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def read_state(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
    return default if row is None else str(row[0])


def write_state(conn: sqlite3.Connection, values: dict[str, str | int | float | None]) -> None:
    for key, value in values.items():
        if value is None:
            conn.execute("DELETE FROM sync_state WHERE key = ?", (key,))
        else:
            conn.execute("INSERT INTO sync_state(key, value) VALUES (?, ?)"
                         " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                         (key, str(value)))


class _Head(msgspec.Struct):
    index: int
    seq: int
    head: str


def last_checkpoint(audit_dir: Path, tail: int = 16 * 1024) -> dict[str, Any] | None:
    """``{"index", "seq", "head"}`` of the last complete checkpoint line, or None."""
    path = audit_dir / CHECKPOINTS_FILE
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - tail))
            data = handle.read()
    except FileNotFoundError:
        return None
    for line in reversed(data.splitlines(keepends=True)):
        if not line.endswith(b"\n"):
            continue
        try:
            head = msgspec.json.decode(line, type=_Head)
        except msgspec.MsgspecError:
            continue
        return {"index": head.index, "seq": head.seq, "head": head.head}
    return None
