"""The log while the daemon runs: reading beside the writer, and retention done by the writer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from appliance.audit import AdminEvent, AuditConfig, AuditLog, RequestRecord, verify
from appliance.audit import query
from appliance.audit.cli import run
from appliance.audit.query import Filters, iter_records, search
from appliance.audit.segments import list_segments
from tests.appliance.audit.conftest import SMALL, request, write
from tests.appliance.audit.test_cli import parse

TEN_DAYS_AGO = time.time() - 10 * 86400
RETAIN = msgspec.structs.replace(SMALL, retention_days=1)


def old_request(i: int) -> RequestRecord:
    return msgspec.structs.replace(request(i), time=TEN_DAYS_AGO)


def write_old(data_dir: Path, count: int) -> None:
    """``count`` ten-day-old records; the log's last record (``stop``) is recent."""
    log = AuditLog(data_dir, SMALL)
    log.start()
    try:
        for future in [log.submit(old_request(i)) for i in range(count)]:
            future.result()
    finally:
        log.close()


def admin_kinds(data_dir: Path) -> list[str]:
    return [r.kind for _, r in iter_records(data_dir) if isinstance(r, AdminEvent)]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


# reading -----------------------------------------------------------------------------------


def test_a_partly_written_frame_and_segment_are_not_read(data_dir: Path) -> None:
    write(data_dir, 25)
    segments = list_segments(data_dir / "audit")
    with segments[-1][1].open("ab") as file:  # a frame the writer is half-way through
        file.write((500).to_bytes(4, "big") + b"\x17" * 40)
    next_path = data_dir / "audit" / f"segment-{segments[-1][0] + 1:08d}.aud"
    next_path.write_bytes(b"APAUDSG1" + bytes(40))  # a segment whose header is being written
    assert [seq for seq, _ in iter_records(data_dir)] == list(range(1, 28))


def test_a_segment_purged_after_listing_is_skipped(data_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write(data_dir, 5)
    listed = list_segments(data_dir / "audit")
    gone = (0, data_dir / "audit" / "segment-00000000.aud")
    monkeypatch.setattr(query, "list_segments", lambda _: [gone, *listed])
    assert len(list(iter_records(data_dir))) == 7


def test_searching_while_the_writer_appends_and_rotates(data_dir: Path) -> None:
    log = AuditLog(data_dir, AuditConfig(durability="relaxed", segment_max_bytes=4096,
                                         fsync_interval_ms=1))
    log.start()
    done = threading.Event()

    def append() -> None:
        try:
            for i in range(3000):
                log.submit(request(i))
        finally:
            done.set()

    writer = threading.Thread(target=append)
    writer.start()
    reads = 0
    try:
        while not done.is_set() or reads < 3:
            seqs = [seq for seq, _ in search(data_dir, Filters())]
            assert seqs == list(range(1, len(seqs) + 1))  # a gapless prefix, never an error
            reads += 1
    finally:
        writer.join()
        log.close()
    assert len(list_segments(data_dir / "audit")) > 10
    assert verify(data_dir).ok


# retention by the running writer -----------------------------------------------------------


def test_the_writer_purges_due_segments_at_start(data_dir: Path) -> None:
    write_old(data_dir, 150)
    before = list_segments(data_dir / "audit")
    assert len(before) >= 3
    log = AuditLog(data_dir, RETAIN)
    log.start()  # the daemon holds the lock: `appliance audit purge` could not run now
    try:
        assert list_segments(data_dir / "audit") == before[-1:]  # the current one stays
        assert log.segments_purged == len(before) - 1
        log.submit(request(1000)).result()
    finally:
        log.close()
    report = verify(data_dir)
    assert report.ok, report.problems
    purged = [r for _, r in iter_records(data_dir)
              if isinstance(r, AdminEvent) and r.kind == "purged"]
    assert len(purged) == 1 and purged[0].detail["segments"] == str(len(before) - 1)
    first_kept = next(iter(iter_records(data_dir)))[0]
    assert first_kept == int(purged[0].detail["anchor_seq"]) + 1


def test_the_running_writer_purges_periodically_but_never_its_current_segment(
        data_dir: Path) -> None:
    config = msgspec.structs.replace(RETAIN, retention_check_seconds=0.01)
    log = AuditLog(data_dir, config)
    log.start()
    try:
        seqs = [f.result() for f in [log.submit(old_request(i)) for i in range(150)]]
        # Every record is old, so all but the segment being written must go.
        wait_for(lambda: len(list_segments(data_dir / "audit")) == 1, "the purge")
        assert log.segments_purged >= 2
        assert [s for s, _ in iter_records(data_dir)][-1] >= seqs[-1]  # the newest survive
        log.submit(request(1000)).result()  # and the writer goes on in that segment
    finally:
        log.close()
    report = verify(data_dir)
    assert report.ok, report.problems
    assert "purged" in admin_kinds(data_dir)
    assert len(list_segments(data_dir / "audit")) == 1


def test_recent_segments_and_offline_commands_are_left_alone(data_dir: Path) -> None:
    write(data_dir, 80)  # recent records
    segments = list_segments(data_dir / "audit")
    log = AuditLog(data_dir, RETAIN)
    log.start(lifecycle_events=False)
    log.close()
    log = AuditLog(data_dir, RETAIN)
    log.start()
    log.close()
    assert list_segments(data_dir / "audit") == segments
    write_old(data_dir, 60)
    log = AuditLog(data_dir, RETAIN)
    log.start(lifecycle_events=False)  # an offline command's writer does not purge
    log.close()
    assert list_segments(data_dir / "audit")[:len(segments)] == segments


def test_cli_purge_still_works_with_the_daemon_stopped(data_dir: Path) -> None:
    write_old(data_dir, 80)
    count = len(list_segments(data_dir / "audit"))
    assert run(parse("audit", "purge", "--days", "1"), data_dir, AuditConfig()) == 0
    assert len(list_segments(data_dir / "audit")) == 1 < count
    assert verify(data_dir).ok
    assert "purged" in admin_kinds(data_dir)
