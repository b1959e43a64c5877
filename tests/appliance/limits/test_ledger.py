"""The usage ledger: batching, flush on close, counters, and a real SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from appliance.limits.ledger import UsageLedger, UsageRow
from appliance.state import StateDB
from tests.conftest import REPO

INTERVAL_MS = 100
#: what a loaded 2-core box may add to one interval before a commit lands (scheduling, fsync)
SLACK_S = 1.0


def row(seq: int, t: float | None = None, **over: object) -> UsageRow:
    fields: dict[str, object] = dict(
        time=time.time() if t is None else t, request_id=str(seq), tenant_id="ten_1",
        department_id="dep_1", app_id="app_1", key_id="key_1", user=None, model_requested="m",
        model_served="m", provider="local", zone="device", prompt_tokens=10,
        completion_tokens=5, cached_tokens=0, cost_micros=7, cache_hit=False, latency_ms=1.5,
        status=200)
    fields.update(over)
    return UsageRow(**fields)  # type: ignore[arg-type]


def count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM usage").fetchone()[0])


def test_rows_wait_for_the_batch_and_close_writes_everything(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateDB(path).close()
    ledger = UsageLedger(path, batch_interval_ms=60_000)  # the timer never fires here
    ledger.start()
    for i in range(500):
        ledger.record(row(i))
    assert count(path) == 0 and ledger.pending == 500  # off the request path
    assert ledger.flush() == 500
    assert count(path) == 500
    for i in range(500, 700):
        ledger.record(row(i))
    ledger.close()
    assert count(path) == 700 and ledger.written == 700


def test_the_timer_commits_batches(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateDB(path).close()
    ledger = UsageLedger(path, batch_interval_ms=INTERVAL_MS)
    ledger.start()
    ledger.record(row(0))
    deadline = time.monotonic() + 10
    while count(path) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert count(path) == 1
    ledger.close()


def test_counters_are_written_with_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = StateDB(path)
    ledger = UsageLedger(path)
    ledger.start()
    march_31, april_1 = 1743465540.0, 1743465540.0 + 120
    ledger.record(row(0, march_31))
    ledger.record(row(1, march_31, app_id=None, department_id=None, tenant_id=None))
    ledger.record(row(2, april_1, prompt_tokens=0, completion_tokens=0, cost_micros=0))
    ledger.record(row(3, april_1, cost_micros=1000))
    ledger.close()
    counters = dict(((k, i, s, p), u) for k, i, s, p, u in db.conn.execute(
        "SELECT * FROM limit_counters"))
    db.close()
    assert counters[("key", "key_1", "day", "2025-03-31")] == 30
    assert counters[("tenant", "ten_1", "day", "2025-03-31")] == 15
    assert counters[("key", "key_1", "month", "2025-03")] == 14
    assert counters[("department", "dep_1", "day", "2025-04-01")] == 15
    assert counters[("department", "dep_1", "month", "2025-04")] == 1000


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from appliance.limits.ledger import UsageLedger
    from tests.appliance.limits.test_ledger import row
    ledger = UsageLedger(Path(sys.argv[1]), batch_interval_ms=int(sys.argv[2]))
    ledger.start()
    print("started", flush=True)
    seq = 0
    while True:
        ledger.record(row(seq))
        seq += 1
        time.sleep(0.0005)
""")


def test_sigkill_loses_at_most_the_last_batch_interval(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateDB(path).close()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(INTERVAL_MS)],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "started\n"
        deadline = time.monotonic() + 30
        while count(path) < 1000 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.33)  # land somewhere inside an interval
        killed_at = time.time()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        seqs = sorted(int(r[0]) for r in conn.execute("SELECT request_id FROM usage"))
        last = conn.execute("SELECT max(time), sum(prompt_tokens + completion_tokens)"
                            " FROM usage").fetchone()
        by_counters = conn.execute("SELECT sum(used) FROM limit_counters WHERE span = 'day'"
                                   " AND scope_kind = 'key'").fetchone()[0]
    assert len(seqs) >= 1000
    assert seqs == list(range(len(seqs))), "a committed batch is whole and in order"
    lost_s = killed_at - last[0]
    assert lost_s <= INTERVAL_MS / 1000 + SLACK_S, f"lost {lost_s:.3f}s of rows"
    assert by_counters == last[1], "the counters agree with the rows that survived"
