"""Crash recovery: torn tails are cut, recorded, and the chain continues."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from appliance.audit import AdminEvent, AuditConfig, AuditLog, verify
from appliance.audit.query import iter_records
from appliance.audit.segments import list_segments
from tests.appliance.audit.conftest import SMALL, request, write

REPO = Path(__file__).resolve().parents[3]


def test_torn_tail_is_truncated_noted_and_chain_continues(data_dir: Path) -> None:
    write(data_dir, 25, SMALL)
    last = list_segments(data_dir / "audit")[-1][1]
    size = last.stat().st_size
    with last.open("ab") as file:  # half a frame: a length prefix and a few bytes
        file.write((500).to_bytes(4, "big") + b"\x17" * 40)
    with (data_dir / "audit" / "checkpoints.jsonl").open("ab") as file:
        file.write(b'{"index": 99, "se')
    assert not verify(data_dir).ok
    log = AuditLog(data_dir, SMALL)
    log.start()
    log.submit(request(1000)).result()
    log.close()
    assert last.stat().st_size >= size
    assert {n.get("problem") for n in log.recovery_notes} >= {"frame runs past the end of the "
                                                               "file", "torn checkpoint line"}
    report = verify(data_dir)
    assert report.ok, report.problems
    kinds = [r.kind for _, r in iter_records(data_dir) if isinstance(r, AdminEvent)]
    assert kinds.count("recovered_torn_tail") == 2


CHILD = """
import sys
from appliance.audit import AuditConfig, AuditLog, RequestRecord
log = AuditLog(sys.argv[1], AuditConfig(durability="strict", checkpoint_every_records=7,
                                        segment_max_bytes=16384))
log.start()
i = 0
while True:
    futures = [log.submit(RequestRecord(request_id=f"kill-{i}-{j}")) for j in range(4)]
    for f in futures:
        print(f.result(), flush=True)
    i += 1
"""


def test_sigkill_loses_no_acknowledged_record(data_dir: Path) -> None:
    rng = random.Random(5)
    acknowledged: list[int] = []
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(6):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(data_dir)],
                                 stdout=subprocess.PIPE, env=env, text=True)
        assert child.stdout is not None
        first = child.stdout.readline()  # wait until it is writing
        assert first.strip().isdigit()
        acknowledged.append(int(first))
        time.sleep(rng.uniform(0.02, 0.3))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate()
        acknowledged += [int(line) for line in out.split() if line.strip().isdigit()]
    log = AuditLog(data_dir, AuditConfig())
    log.start()  # recovery of the last kill
    log.close()
    report = verify(data_dir)
    assert report.ok, report.problems
    present = {seq for seq, _ in iter_records(data_dir)}
    missing = set(acknowledged) - present
    assert not missing, sorted(missing)[:10]
    assert len(acknowledged) > 30


def _crashed_log(data_dir: Path) -> Path:
    """A log whose writer died without closing: the segment still has its zeros."""
    log = AuditLog(data_dir, AuditConfig(durability="strict"))
    log.start()
    for i in range(6):
        log.submit(request(i)).result()
    path = list_segments(data_dir / "audit")[-1][1]
    log._thread = None  # noqa: SLF001 - simulate the crash: no stop event, no cut-back
    log._release()  # noqa: SLF001
    return path


def test_preallocated_zeros_after_a_crash_are_the_end(data_dir: Path) -> None:
    path = _crashed_log(data_dir)
    assert path.stat().st_size > 4096
    assert verify(data_dir).ok
    log = AuditLog(data_dir, SMALL)
    log.start()
    log.submit(request(100)).result()
    log.close()
    assert not log.recovery_notes  # nothing was torn
    report = verify(data_dir)
    assert report.ok and report.records == 10, report.problems  # start, 6, start, 1, stop


def test_a_torn_frame_in_the_zeros_is_cut(data_dir: Path) -> None:
    """A crash mid-write leaves part of a frame, then the zeros: torn, cut at start."""
    path = _crashed_log(data_dir)
    from appliance.audit.segments import Tail, scan

    data = bytearray(path.read_bytes())
    tail: list[Tail] = []
    list(scan(bytes(data), tail))
    end = tail[0].offset
    data[end:end + 44] = (500).to_bytes(4, "big") + b"\x17" * 40  # half a frame, then zeros
    path.write_bytes(bytes(data))
    log = AuditLog(data_dir, SMALL)
    log.start()
    log.submit(request(100)).result()
    log.close()
    assert [n.get("problem") for n in log.recovery_notes] == ["frame checksum mismatch"]
    assert verify(data_dir).ok


def test_data_after_the_zeros_is_damage_not_a_torn_tail(data_dir: Path) -> None:
    path = _crashed_log(data_dir)
    data = bytearray(path.read_bytes())
    data[-100:-60] = b"\x17" * 40  # something written far past the last record
    path.write_bytes(bytes(data))
    report = verify(data_dir)
    assert not report.ok and "corrupt" in (report.first_problem or "")
