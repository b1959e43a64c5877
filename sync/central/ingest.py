"""What boxes send: usage batches, audit checkpoint batches, heartbeats.

Each batch stream (``usage``, ``checkpoints``) of a box is idempotent: the batch id, the
stream's sequence number and every row go into SQLite in one transaction, so a batch the box
re-sends (its ack was lost) is acknowledged again without being counted twice, and a batch
is never half stored. Checkpoints are checked first (``sync.central.audit``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from sync.central import audit
from sync.central.errors import Conflict
from sync.central.state import CentralDB

log = logging.getLogger("sync.central.ingest")

BatchId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class _Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    pass


class UsageRow(_Body, frozen=True):
    time: float
    model_requested: str
    prompt_tokens: NonNegative
    completion_tokens: NonNegative
    cost_micros: NonNegative
    request_id: str | None = None
    tenant_id: str | None = None
    department_id: str | None = None
    app_id: str | None = None
    key_id: str | None = None
    user: str | None = None
    model_served: str | None = None
    provider: str | None = None
    zone: str | None = None
    cached_tokens: NonNegative = 0
    cache_hit: bool = False
    latency_ms: float = 0.0
    status: int = 200
    #: 1 for one request, N for an hourly aggregate row of N requests.
    requests: Annotated[int, msgspec.Meta(ge=1)] = 1
    aggregate: bool = False


class UsageBatch(_Body, frozen=True):
    batch_id: BatchId
    seq: NonNegative
    rows: list[UsageRow]


class CheckpointLine(_Body, frozen=True):
    line: Annotated[str, msgspec.Meta(min_length=2, max_length=16384)]


class CheckpointBatch(_Body, frozen=True):
    batch_id: BatchId
    seq: NonNegative
    checkpoints: list[CheckpointLine]


class AuditHead(msgspec.Struct, kw_only=True, frozen=True):
    index: int
    seq: int
    head: str


class Heartbeat(msgspec.Struct, kw_only=True, frozen=True):
    """Unknown fields are accepted (and ignored) so a newer box can say more."""

    policy_version: int | None = None
    policy_status: str | None = None
    outbox_pending: int | None = None
    model: str | None = None
    hardware: dict[str, Any] | None = None
    audit_head: AuditHead | None = None
    appliance_version: str | None = None
    #: The box's audit public key (raw Ed25519, base64): registered if central has none.
    audit_public_key: str | None = None


class Ack(msgspec.Struct, frozen=True):
    acked_seq: int
    duplicate: bool


def _ingest(db: CentralDB, box_id: str, stream: str, batch_id: str, seq: int, now: float,
            insert: Callable[[sqlite3.Connection], int]) -> Ack:
    with db.transaction() as conn:
        seen = conn.execute("SELECT seq FROM batches WHERE box_id = ? AND stream = ? AND "
                            "batch_id = ?", (box_id, stream, batch_id)).fetchone()
        if seen is not None:
            if seen[0] != seq:
                raise Conflict(f"batch `{batch_id}` was acknowledged with seq {seen[0]}, "
                               f"not {seq}", code="batch_conflict")
            return Ack(seq, True)
        last = conn.execute("SELECT max(seq) FROM batches WHERE box_id = ? AND stream = ?",
                            (box_id, stream)).fetchone()[0]
        if last is not None and seq <= last:
            raise Conflict(f"{stream} seq {seq} is not greater than the last acknowledged "
                           f"seq {last}", code="sequence_conflict")
        items = insert(conn)
        conn.execute("INSERT INTO batches(box_id, stream, batch_id, seq, received_at, items) "
                     "VALUES (?,?,?,?,?,?)", (box_id, stream, batch_id, seq, now, items))
    return Ack(seq, False)


_USAGE_COLUMNS = ("time", "request_id", "tenant_id", "department_id", "app_id", "key_id",
                  "user", "model_requested", "model_served", "provider", "zone",
                  "prompt_tokens", "completion_tokens", "cached_tokens", "cost_micros",
                  "cache_hit", "latency_ms", "status", "requests", "aggregate")
_INSERT_USAGE = (f"INSERT INTO usage(box_id, batch_id, {', '.join(_USAGE_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * (len(_USAGE_COLUMNS) + 2))})")


def ingest_usage(db: CentralDB, box_id: str, batch: UsageBatch, now: float) -> Ack:
    def insert(conn: sqlite3.Connection) -> int:
        conn.executemany(_INSERT_USAGE, [
            (box_id, batch.batch_id, *(getattr(row, c) for c in _USAGE_COLUMNS))
            for row in batch.rows])
        return len(batch.rows)

    return _ingest(db, box_id, "usage", batch.batch_id, batch.seq, now, insert)


def ingest_checkpoints(db: CentralDB, box_id: str, batch: CheckpointBatch, now: float) -> Ack:
    """Store the batch's new checkpoints once they pass ``audit.new_lines``; a failing batch
    is refused whole (``checkpoint_invalid``) and the failure recorded for the fleet view."""
    lines = audit.parse_lines(c.line for c in batch.checkpoints)

    def insert(conn: sqlite3.Connection) -> int:
        fresh = audit.new_lines(conn, box_id, lines, audit.registered_key(conn, box_id))
        conn.executemany("INSERT INTO checkpoints(box_id, idx, seq, head, line, received_at) "
                         "VALUES (?,?,?,?,?,?)",
                         [(box_id, c.index, c.seq, c.head, c.line, now) for c in fresh])
        return len(lines)

    try:
        return _ingest(db, box_id, "checkpoints", batch.batch_id, batch.seq, now, insert)
    except audit.CheckpointInvalid as exc:
        log.warning("box %s: refused a checkpoint batch: %s", box_id, exc)
        audit.record_problem(db.conn, box_id, str(exc), now)
        raise Conflict(str(exc), code="checkpoint_invalid") from exc


def record_heartbeat(db: CentralDB, box_id: str, beat: Heartbeat, now: float) -> None:
    """Apply a heartbeat; one that presents an audit key other than the registered one is
    refused (``audit_key_changed``) before anything of it is applied."""
    if beat.audit_public_key is not None:
        audit.offer_key(db, box_id, audit.AuditKey.parse(beat.audit_public_key), now)
    head = msgspec.json.encode(beat.audit_head).decode() if beat.audit_head else None
    db.conn.execute(
        "UPDATE boxes SET last_contact = ?, policy_version = ?, policy_status = ?, "
        "outbox_pending = ?, model = ?, hardware = coalesce(?, hardware), "
        "appliance_version = ?, audit_head = ? WHERE id = ?",
        (now, beat.policy_version, beat.policy_status, beat.outbox_pending, beat.model,
         json.dumps(beat.hardware) if beat.hardware is not None else None,
         beat.appliance_version, head, box_id))
