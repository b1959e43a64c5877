"""The durable outbox on a real ``state.db``: usage rows enter it in the ledger's transaction,
batches keep their id and sequence number across a reopen (a crash), rows leave only when
acknowledged, compaction keeps the totals exact, and checkpoints are read from the audit
writer's append-only file after a durable cursor."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from appliance.limits.ledger import UsageLedger, UsageRow
from appliance.state import StateDB
from sync.outbox import Outbox, last_checkpoint


def usage_row(n: int, *, when: float = 1_700_000_000.0, department: str = "d_1",
              model: str = "gemma-3-270m", cache_hit: bool = False) -> UsageRow:
    return UsageRow(time=when + n, request_id=f"req_{n}", tenant_id="t_1",
                    department_id=department, app_id="a_1", key_id="k_1", user=None,
                    model_requested=model, model_served=model, provider="local", zone="device",
                    prompt_tokens=10 + n, completion_tokens=5, cached_tokens=0, cost_micros=n,
                    cache_hit=cache_hit, latency_ms=1.5, status=200)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "audit").mkdir()
    StateDB(tmp_path / "state.db").close()
    return tmp_path


def record(data: Path, rows: list[UsageRow], enqueue: bool = True) -> None:
    ledger = UsageLedger(data / "state.db", enqueue_for_sync=enqueue)
    ledger.start()
    for row in rows:
        ledger.record(row)
    ledger.close()


def count(data: Path, table: str) -> int:
    conn = sqlite3.connect(data / "state.db")
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def totals(rows: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    return (sum(r["requests"] for r in rows), sum(r["prompt_tokens"] for r in rows),
            sum(r["completion_tokens"] for r in rows), sum(r["cost_micros"] for r in rows))


def test_ledger_enqueues_in_the_same_transaction(data: Path) -> None:
    record(data, [usage_row(i) for i in range(5)])
    assert count(data, "usage") == count(data, "sync_outbox") == 5
    record(data, [usage_row(9)], enqueue=False)  # a standalone box queues nothing
    assert (count(data, "usage"), count(data, "sync_outbox")) == (6, 5)


def test_a_failed_enqueue_rolls_back_the_ledger_too(data: Path) -> None:
    conn = sqlite3.connect(data / "state.db")
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON sync_outbox "
                 "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
    conn.commit()
    ledger = UsageLedger(data / "state.db", enqueue_for_sync=True)
    ledger.start()
    ledger.record(usage_row(1))
    assert ledger.flush() == 0
    assert (count(data, "usage"), count(data, "sync_outbox")) == (0, 0)
    assert ledger.pending == 1  # kept for the next try
    conn.execute("DROP TRIGGER refuse")
    conn.commit()
    conn.close()
    ledger.close()
    assert (count(data, "usage"), count(data, "sync_outbox")) == (1, 1)


def test_a_batch_keeps_its_id_and_seq_until_acknowledged(data: Path) -> None:
    record(data, [usage_row(i) for i in range(7)])
    outbox = Outbox(data / "state.db", data / "audit")
    first = outbox.usage_batch(3)
    assert first is not None and first.seq == 1 and first.count == 3
    outbox.close()
    # A crash between send and acknowledgement: the reopened outbox sends the same batch.
    outbox = Outbox(data / "state.db", data / "audit")
    again = outbox.usage_batch(3)
    assert again == first
    body = json.loads(first.body)
    assert body["batch_id"] == first.batch_id and body["seq"] == 1
    assert [r["request_id"] for r in body["rows"]] == ["req_0", "req_1", "req_2"]
    assert body["rows"][0]["requests"] == 1 and body["rows"][0]["aggregate"] is False
    assert body["rows"][0]["cache_hit"] is False
    assert outbox.pending_usage() == 7
    outbox.acknowledge(first)
    assert outbox.pending_usage() == 4
    outbox.acknowledge(first)  # a second acknowledgement changes nothing
    assert outbox.pending_usage() == 4
    second = outbox.usage_batch(3)
    assert second is not None and second.seq == 2 and second.batch_id != first.batch_id
    assert [r["request_id"] for r in json.loads(second.body)["rows"]] == [
        "req_3", "req_4", "req_5"]
    outbox.acknowledge(second)
    third = outbox.usage_batch(3)
    assert third is not None and third.seq == 3 and third.count == 1
    outbox.acknowledge(third)
    assert outbox.usage_batch(3) is None and outbox.pending_usage() == 0
    assert count(data, "usage") == 7  # the ledger keeps its rows
    outbox.close()


def test_compaction_keeps_totals_and_never_touches_the_batch_in_flight(data: Path) -> None:
    hour = 1_700_000_000.0 - 1_700_000_000.0 % 3600
    rows = [usage_row(i, when=hour, department=f"d_{i % 2}", cache_hit=i % 5 == 0)
            for i in range(300)]
    record(data, rows)
    outbox = Outbox(data / "state.db", data / "audit", max_rows=100)
    in_flight = outbox.usage_batch(10)
    assert in_flight is not None
    removed = outbox.compact()
    assert removed > 0 and outbox.pending_usage() <= 100
    assert outbox.usage_batch(10) == in_flight  # unchanged, still first
    sent: list[dict[str, Any]] = list(json.loads(in_flight.body)["rows"])
    outbox.acknowledge(in_flight)
    while (batch := outbox.usage_batch(50)) is not None:
        sent += json.loads(batch.body)["rows"]
        outbox.acknowledge(batch)
    expected = (300, sum(r.prompt_tokens for r in rows), sum(r.completion_tokens for r in rows),
                sum(r.cost_micros for r in rows))
    assert totals(sent) == expected
    aggregates = [r for r in sent if r["aggregate"]]
    assert aggregates and all(r["request_id"] is None for r in aggregates)
    assert all(r["time"] % 3600 == 0 for r in aggregates)
    # Rows are merged only with their like: department and cache hit are kept apart.
    for department in ("d_0", "d_1"):
        mine = [r for r in sent if r["department_id"] == department]
        assert totals(mine)[0] == 150
    assert sum(r["requests"] for r in sent if r["cache_hit"]) == 60
    outbox.close()


def test_compaction_does_nothing_under_the_bound(data: Path) -> None:
    record(data, [usage_row(i) for i in range(10)])
    outbox = Outbox(data / "state.db", data / "audit", max_rows=10)
    assert outbox.compact() == 0 and outbox.pending_usage() == 10
    outbox.close()


def checkpoint_line(index: int) -> bytes:
    return msgspec.json.encode({"index": index, "seq": index * 10, "head": f"{index:064x}",
                                "segment": 1, "time": time.time(), "prev": "",
                                "key_id": "k", "sig": "00"}) + b"\n"


def test_checkpoints_are_sent_after_the_durable_cursor(data: Path) -> None:
    path = data / "audit" / "checkpoints.jsonl"
    path.write_bytes(b"".join(checkpoint_line(i) for i in range(1, 6)) + b'{"index": 6, "se')
    outbox = Outbox(data / "state.db", data / "audit")
    assert outbox.pending_checkpoints() == 5  # the torn (unfinished) line waits
    first = outbox.checkpoint_batch(3)
    assert first is not None and first.seq == 1
    lines = [json.loads(c["line"])["index"] for c in json.loads(first.body)["checkpoints"]]
    assert lines == [1, 2, 3]
    outbox.close()
    outbox = Outbox(data / "state.db", data / "audit")
    assert outbox.checkpoint_batch(3) == first  # same batch after a reopen
    outbox.acknowledge(first)
    assert outbox.pending_checkpoints() == 2
    with path.open("r+b") as handle:  # the writer finishes its line and adds one
        handle.seek(-len(b'{"index": 6, "se'), 2)
        handle.write(checkpoint_line(6) + checkpoint_line(7))
    second = outbox.checkpoint_batch(10)
    assert second is not None and second.seq == 2
    assert [json.loads(c["line"])["index"] for c in json.loads(second.body)["checkpoints"]] == [
        4, 5, 6, 7]
    outbox.acknowledge(second)
    assert outbox.checkpoint_batch(10) is None
    assert last_checkpoint(data / "audit") == {"index": 7, "seq": 70, "head": f"{7:064x}"}
    # A file rewritten shorter (retention): the cursor is found again by index.
    path.write_bytes(checkpoint_line(7) + checkpoint_line(8))
    third = outbox.checkpoint_batch(10)
    assert third is not None
    assert [json.loads(c["line"])["index"] for c in json.loads(third.body)["checkpoints"]] == [8]
    outbox.close()


def test_no_checkpoints_file_means_nothing_to_send(data: Path) -> None:
    outbox = Outbox(data / "state.db", data / "audit")
    assert outbox.checkpoint_batch(10) is None and outbox.pending_checkpoints() == 0
    assert last_checkpoint(data / "audit") is None
    outbox.close()
