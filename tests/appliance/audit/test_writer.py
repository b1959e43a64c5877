from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from appliance.audit import AuditConfig, AuditLog, RequestRecord, verify
from appliance.audit.query import Filters, iter_records, search
from appliance.audit.records import AdminEvent
from appliance.audit.segments import list_segments
from tests.appliance.audit.conftest import SMALL, request, write


def test_round_trip_decrypts_every_record_in_order(data_dir: Path) -> None:
    seqs = write(data_dir, 120)
    records = list(iter_records(data_dir))
    assert [seq for seq, _ in records] == list(range(1, 123))  # start + 120 + stop
    assert isinstance(records[0][1], AdminEvent) and records[0][1].kind == "start"
    assert isinstance(records[-1][1], AdminEvent) and records[-1][1].kind == "stop"
    assert [r.request_id for _, r in records[1:-1] if isinstance(r, RequestRecord)] == \
        [f"req-{i}" for i in range(120)]
    assert seqs == list(range(2, 122))
    assert len(list_segments(data_dir / "audit")) >= 3  # rotated by size
    report = verify(data_dir)
    assert report.ok, report.problems
    assert report.records == 122 and report.checkpoints >= 2


def test_reopen_continues_the_chain(data_dir: Path) -> None:
    write(data_dir, 30)
    write(data_dir, 30)
    assert verify(data_dir).ok
    assert [s for s, _ in iter_records(data_dir)] == list(range(1, 65))


def test_concurrent_strict_appends_share_fsyncs(data_dir: Path) -> None:
    config = AuditConfig(durability="strict")
    log = AuditLog(data_dir, config)
    log.start()

    async def writer(n: int) -> list[int]:
        return [await log.append(request(n * 100 + i)) for i in range(40)]

    async def main() -> list[list[int]]:
        return await asyncio.gather(*(writer(n) for n in range(32)))

    try:
        seqs = [s for chunk in asyncio.run(main()) for s in chunk]
    finally:
        log.close()
    assert sorted(seqs) == list(range(2, 2 + 32 * 40))
    # Every append returned after a flush that covered it; 1280 records shared far fewer.
    assert log.fsyncs < log.records_written / 4, (log.fsyncs, log.records_written)
    assert verify(data_dir).ok


def test_relaxed_mode_flushes_on_close(data_dir: Path) -> None:
    write(data_dir, 50, AuditConfig(durability="relaxed", fsync_interval_ms=50))
    report = verify(data_dir)
    assert report.ok and report.records == 52


def test_canary_prompt_never_on_disk_in_plaintext(data_dir: Path) -> None:
    canary = "CANARY-7f3a9 patient Jane Roe MRN 0042137"
    log = AuditLog(data_dir, AuditConfig(content="full", checkpoint_every_records=5))
    log.start()
    try:
        for i in range(20):
            record = RequestRecord(request_id=f"canary-req-{i}", model_requested="gemma",
                                   content=log.content(canary, canary + " reply"))
            log.submit(record).result()
    finally:
        log.close()
    for path in (data_dir).rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            for needle in (canary, "CANARY-7f3a9", "Jane Roe", "canary-req-"):
                assert needle.encode() not in blob, f"{needle!r} in {path}"
    shown = [r for _, r in search(data_dir, Filters(type="request"))]
    assert isinstance(shown[0], RequestRecord) and shown[0].content.prompt == canary


def test_hashed_content_keeps_no_text(data_dir: Path) -> None:
    log = AuditLog(data_dir, AuditConfig(content="hashed"))
    log.start()
    try:
        content = log.content("secret prompt", "secret answer")
        again = log.content("secret prompt", None)
    finally:
        log.close()
    assert content.mode == "hashed" and content.prompt and len(content.prompt) == 64
    assert "secret" not in (content.prompt + (content.response or ""))
    assert again.prompt == content.prompt and again.response is None


def test_filters(data_dir: Path) -> None:
    write(data_dir, 30)
    found = [r for _, r in search(data_dir, Filters(sensitivity="internal", action="redact"))]
    assert found and all(isinstance(r, RequestRecord) and r.sensitivity == "internal"
                         and r.action == "redact" for r in found)
    assert len(list(search(data_dir, Filters(type="admin")))) == 2
    assert list(search(data_dir, Filters(tenant="nobody"))) == []
    assert len(list(search(data_dir, Filters(model="gemma"), limit=5))) == 5


def test_small_config_is_valid() -> None:
    assert SMALL.segment_max_bytes == 8192


def test_a_waiter_that_gives_up_does_not_break_the_writer(data_dir: Path) -> None:
    """A request cancelled while waiting for durability (client gone) cancels its future; the
    record is still written and the log keeps accepting records."""
    log = AuditLog(data_dir, AuditConfig(durability="strict"))
    log.start()

    async def main() -> int:
        waiters = [asyncio.ensure_future(log.append(request(i))) for i in range(50)]
        await asyncio.sleep(0)
        for task in waiters[::2]:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        return await log.append(request(999))

    try:
        last = asyncio.run(main())
    finally:
        log.close()
    assert last == 52  # start + 50 + this one: the cancelled ones were written too
    report = verify(data_dir)
    assert report.ok and report.records == 53


def test_a_lone_request_is_flushed_on_its_own_thread(data_dir: Path) -> None:
    """``alone=True`` with an idle writer: written and flushed before ``append`` returns,
    without the writer thread (one flush per record, as strict mode asks)."""
    log = AuditLog(data_dir, AuditConfig(durability="strict", checkpoint_every_records=5))
    log.start()

    async def main() -> list[int]:
        await asyncio.sleep(0.05)  # the start event has gone through the thread
        before = log.fsyncs
        seqs = []
        for i in range(12):
            seqs.append(await log.append(request(i), alone=True))
            # durable on return: the flush count moved with it
            assert log.fsyncs >= before + len(seqs)
        return seqs

    try:
        seqs = asyncio.run(main())
    finally:
        log.close()
    assert seqs == list(range(2, 14))
    report = verify(data_dir)
    assert report.ok, report.problems
    assert report.records == 14 and report.checkpoints >= 2  # checkpoints due inline too


def test_inline_and_thread_writers_take_turns(data_dir: Path) -> None:
    """Lone appends, queued appends and records submitted from other threads, all at once:
    every record gets its own sequence number and the chain stays intact across segments."""
    import threading

    config = AuditConfig(durability="strict", segment_max_bytes=8192,
                         checkpoint_every_records=7)
    log = AuditLog(data_dir, config)
    log.start()
    submitted: list[int] = []

    def from_a_thread() -> None:
        submitted.extend(log.submit(request(10_000 + i)).result() for i in range(60))

    async def writer(n: int) -> list[int]:
        return [await log.append(request(n * 100 + i), alone=(i + n) % 2 == 0)
                for i in range(30)]

    async def main() -> list[list[int]]:
        return await asyncio.gather(*(writer(n) for n in range(8)))

    threads = [threading.Thread(target=from_a_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        seqs = [s for chunk in asyncio.run(main()) for s in chunk]
    finally:
        for thread in threads:
            thread.join()
        log.close()
    everything = sorted(seqs + submitted)
    assert len(set(everything)) == len(everything) == 8 * 30 + 120
    assert len(list_segments(data_dir / "audit")) >= 3
    report = verify(data_dir)
    assert report.ok, report.problems
    assert report.records == len(everything) + 2  # start and stop


def test_segments_are_preallocated_and_cut_back(data_dir: Path) -> None:
    """The segment being written runs ahead of its records in zeros; a clean close, and
    every rotation, cuts the file back to its last record."""
    from appliance.audit.segments import Tail, scan
    from appliance.audit.writer import PREALLOCATE_BYTES

    log = AuditLog(data_dir, AuditConfig(durability="strict"))
    log.start()
    try:
        for i in range(5):
            log.submit(request(i)).result()
        path = list_segments(data_dir / "audit")[-1][1]
        data = path.read_bytes()
        assert len(data) >= PREALLOCATE_BYTES  # zeros ahead of the records
        tail: list[Tail] = []
        assert len(list(scan(data, tail))) == 6
        assert tail[0].kind == "clean" and data[tail[0].offset:].count(0) == \
            len(data) - tail[0].offset
        assert verify(data_dir).ok  # while the daemon writes, zeros and all
    finally:
        log.close()
    data = path.read_bytes()
    tail = []
    assert len(list(scan(data, tail))) == 7 and tail[0].offset == len(data)


def test_lone_records_are_still_flushed_and_checkpointed_on_time(data_dir: Path) -> None:
    """A record written on the caller's thread tells the sleeping writer thread of the
    deadlines it brings: relaxed mode's flush interval and the checkpoint interval."""
    import time

    log = AuditLog(data_dir, AuditConfig(durability="relaxed", fsync_interval_ms=300,
                                         checkpoint_every_seconds=0.6))
    log.start()
    try:
        deadline = time.monotonic() + 10
        while log.checkpoints_written < 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # the start event is flushed and checkpointed: the thread sleeps
        assert log.checkpoints_written == 1
        checkpoints = log.checkpoints_written

        async def one() -> None:
            # nothing is due yet, so nothing is flushed or signed here: the thread's to do
            await log.append(request(1), alone=True)

        asyncio.run(one())
        deadline = time.monotonic() + 10
        while (log.checkpoints_written == checkpoints or log._unsynced) \
                and time.monotonic() < deadline:  # noqa: SLF001
            time.sleep(0.02)
        assert log.checkpoints_written > checkpoints and not log._unsynced  # noqa: SLF001
    finally:
        log.close()
    assert verify(data_dir).ok


def test_a_failed_write_closes_the_log_on_either_path(data_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up: the request whose record could not be written fails, and so does
    every later one (fail closed), whether the record went inline or through the thread; the
    log still closes."""
    import errno

    import appliance.audit.writer as writer
    from appliance.audit.writer import AuditUnavailable

    log = AuditLog(data_dir, AuditConfig(durability="strict"))
    log.start()
    log.submit(request(0)).result()

    def full(fd: int, data: object, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer.os, "pwrite", full)

    async def main() -> None:
        with pytest.raises(AuditUnavailable, match="No space left"):
            await log.append(request(1), alone=True)
        for alone in (True, False):
            with pytest.raises(AuditUnavailable):
                await log.append(request(2), alone=alone)

    try:
        asyncio.run(main())
        with pytest.raises(AuditUnavailable):
            log.submit(request(3))
    finally:
        monkeypatch.undo()
        log.close()
    report = verify(data_dir)
    assert report.ok, report.problems  # what was written before stays intact
