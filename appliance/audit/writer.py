"""``AuditLog``: the one writer of the audit log, shared by every request of the daemon.

Requests hand records to ``append`` from many asyncio tasks (or ``submit`` from threads); a
dedicated writer thread takes whatever is queued, encrypts and frames it, extends the hash
chain, and writes the whole batch with one ``write`` and, in ``strict`` mode, one ``fdatasync``
before any of those appends return: concurrent requests share a disk flush (group commit), so
throughput grows with concurrency instead of being capped at one fsync per request. In
``relaxed`` mode appends return once the batch is written and the thread flushes every
``fsync_interval_ms``. Checkpoints are signed only over records already flushed.

A request that is the only one in flight (``append(..., alone=True)``) has nobody to share a
flush with, and waiting for the thread costs it two thread switches and a wake-up of the event
loop (about 100 us, a third of a disk flush here): when the writer is idle and nothing is
queued, such a record is written and flushed on the caller's thread instead, as PostgreSQL
flushes at once when fewer than ``commit_siblings`` transactions are active. The event loop is
blocked meanwhile, which costs nothing when there is no other request to serve; under
concurrency records go through the thread and share its flushes. ``_busy`` makes the two
writers take turns, so the segment, chain and checkpoint state have one writer at a time.

One writer per data directory is enforced with an exclusive ``flock`` on ``audit/.lock``, which
the offline commands (purge, master-key rotation) take too. Holding that lock, the daemon's
writer applies the retention policy itself: at start and every ``retention_check_seconds`` it
purges the segments that are due (never the one it is writing), between batches.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from appliance.audit.checkpoints import CHECKPOINTS_FILE, fsync_dir, line_digest, sign_checkpoint
from appliance.audit.config import AuditConfig
from appliance.audit.crypto import (
    MasterKey,
    RecordCipher,
    SigningKey,
    find_master,
    load_master_keys,
    load_signing_key,
    new_data_key,
)
from appliance.audit.records import Content, Record, admin_event, encode_record, shape_content
from appliance.audit.recovery import LogState, recover
from appliance.audit.retention import PurgeResult, purge_segments
from appliance.audit.segments import (
    HEADER_SIZE,
    SegmentHeader,
    encode_frame,
    frame_body,
    link,
    segment_path,
)
from appliance.datadir import DataDir

LOCK_FILE = ".lock"
log = logging.getLogger("appliance.audit")


class AuditUnavailable(Exception):
    """The log cannot take records (not started, closed, or a write failed): fail closed."""


class AuditLocked(Exception):
    """Another process holds the audit log."""


def lock_audit_dir(audit_dir: Path) -> int:
    """An exclusive lock on the log; the returned fd holds it until closed."""
    audit_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(audit_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AuditLocked(f"{audit_dir} is in use by another process (is the daemon running?)")
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


#: The segment being written is extended with zeros this much at a time, ahead of its
#: records, and cut back to its records when it is closed. Overwriting blocks that are already
#: allocated and on disk lets ``fdatasync`` flush just the data: appending to the file also
#: changed its size, which cost a journal commit with every flush (about 240 against 160 us
#: a flush here). A crash leaves the zeros, which ``segments.scan`` reads as the end.
PREALLOCATE_BYTES = 1024 * 1024
_ZEROS = bytes(64 * 1024)


#: Who waits for a record: a thread (``submit``) or a coroutine (``append``).
_Waiter = Future[int] | asyncio.Future[int]
_Pending = tuple[bytes, _Waiter]


def _resolve(waiters: list[tuple[asyncio.Future[int], int]]) -> None:
    """On the waiters' loop: each gets its record's sequence number (unless it gave up)."""
    for future, seq in waiters:
        if not future.done():
            future.set_result(seq)


def _reject(waiters: list[asyncio.Future[int]], exc: BaseException) -> None:
    for future in waiters:
        if not future.done():
            future.set_exception(exc)


class AuditLog:
    """Append-only, encrypted, hash-chained, checkpointed; see the package docstring."""

    def __init__(self, data_dir: DataDir | Path, config: AuditConfig) -> None:
        self.data = data_dir if isinstance(data_dir, DataDir) else DataDir(Path(data_dir))
        self.config = config
        #: Disk flushes of segment data so far (group commit makes this << records).
        self.fsyncs = 0
        self.records_written = 0
        self.checkpoints_written = 0
        #: Segments deleted by retention since start.
        self.segments_purged = 0
        #: What recovery repaired at start (also recorded as admin events).
        self.recovery_notes: list[dict[str, str]] = []
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._closing = False
        #: A batch is being written (by the thread or by ``append`` inline); under ``_cond``.
        self._busy = False
        self._failed: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._lock_fd = -1
        self._seg_fd = -1
        #: The size of the segment file: its records, then zeros (``PREALLOCATE_BYTES``).
        self._allocated = 0
        self._cp_fd = -1
        self._masters: list[MasterKey] = []
        self._signer: SigningKey | None = None
        self._cipher: RecordCipher | None = None
        self._state: LogState | None = None
        self._unsynced = False
        self._since_checkpoint = 0
        self._last_checkpoint = 0.0
        self._last_fsync = 0.0
        self._lifecycle = True
        self._retain = False
        self._next_retention = 0.0

    # lifecycle ----------------------------------------------------------------------------

    def start(self, lifecycle_events: bool = True) -> None:
        """Lock, load keys, recover from a crash, purge what retention says is due, start the
        writer thread, record ``start`` (and ``stop`` at close). Offline commands pass
        ``lifecycle_events=False``: no lifecycle events, and no retention."""
        self._lifecycle = lifecycle_events
        self._retain = lifecycle_events and self.config.retention_days > 0
        self.data.audit.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd = lock_audit_dir(self.data.audit)
        try:
            self._masters = load_master_keys(self.data, create=True)
            self._signer = load_signing_key(self.data, create=True)
            state = self._state = recover(self.data.audit)
            if state.segment_path is None or state.segment_size >= self.config.segment_max_bytes:
                self._begin_segment()
            else:
                assert state.header is not None
                master = find_master(self._masters, state.header.master_key_id)
                self._cipher = RecordCipher(master.unwrap(state.header.wrapped_key),
                                            state.header.segment_id)
                self._seg_fd = os.open(state.segment_path, os.O_WRONLY)
                self._allocated = os.fstat(self._seg_fd).st_size
            self._cp_fd = os.open(self.data.audit / CHECKPOINTS_FILE,
                                  os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except BaseException:
            self._release()
            raise
        purged = self._purge_due() if self._retain else None
        self._last_checkpoint = self._last_fsync = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()
        self.recovery_notes = state.notes
        for note in state.notes:
            kind = note.pop("kind", "recovered_torn_tail")
            self.submit(admin_event("verification_failed" if kind == "verification_failed"
                                    else "recovered_torn_tail", **note))
        if lifecycle_events:
            self.submit(admin_event("start", durability=self.config.durability,
                                    content=self.config.content))
        if purged is not None:
            self._record_purge(purged)

    def close(self) -> None:
        """Record ``stop``, flush everything, sign a last checkpoint, release the lock."""
        if self._thread is None:
            return
        if self._failed is None and self._lifecycle:
            self.submit(admin_event("stop"))
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        self._thread = None
        if self._failed is None and self._seg_fd >= 0:
            try:
                self._trim()
                self._sync()
            except OSError:  # the records are flushed already; zeros are read as the end
                log.exception("audit: could not cut the segment back to its records")
        self._release()

    def _release(self) -> None:
        for fd in (self._seg_fd, self._cp_fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._seg_fd = self._cp_fd = self._lock_fd = -1

    # appending ----------------------------------------------------------------------------

    def submit(self, record: Record) -> Future[int]:
        """Queue a record from any thread; the future gives its sequence number once durable
        (strict) or written (relaxed)."""
        future: Future[int] = Future()
        self._enqueue(encode_record(record), future)
        return future

    async def append(self, record: Record, alone: bool = False) -> int:
        """Append and wait: in strict mode this returns only once the record is fsynced.
        The waiter is a future of the running loop, which the writer thread resolves with one
        ``call_soon_threadsafe`` per batch (not a thread future wrapped per record). ``alone``:
        the caller's request is the only one in flight, so the record is written on this
        thread when the writer is idle (see the module docstring)."""
        payload = encode_record(record)
        if alone:
            seq = self._write_inline(payload)
            if seq:
                return seq
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._enqueue(payload, future)
        return await future

    def _write_inline(self, payload: bytes) -> int:
        """Write (and in strict mode flush) one record on the calling thread; its sequence
        number, or 0 when the writer is busy or records are queued (then the caller queues)."""
        with self._cond:
            if self._busy or self._queue or self._thread is None or self._closing:
                return 0
            if self._failed is not None:
                raise AuditUnavailable("the audit log is not accepting records") \
                    from self._failed
            self._busy = True
        # Nothing was waiting to be flushed or checkpointed: the thread sleeps without a
        # deadline, and must be told of the one this record brings (relaxed flush, checkpoint).
        idle = not self._unsynced and not self._since_checkpoint
        try:
            seq = self._write_records([payload])
            self._periodic(force=False)  # a checkpoint due after this record
        except BaseException as exc:  # disk full, I/O error: fail closed, like the thread
            self._fail(exc, [])
            raise AuditUnavailable(f"audit write failed: {exc}") from exc
        finally:
            with self._cond:
                self._busy = False
                if self._queue or self._closing or idle:  # else the thread sleeps on
                    self._cond.notify()
        return seq

    def _enqueue(self, payload: bytes, waiter: _Waiter) -> None:
        with self._cond:
            if self._thread is None or self._closing or self._failed is not None:
                raise AuditUnavailable("the audit log is not accepting records") \
                    from self._failed
            self._queue.append((payload, waiter))
            if len(self._queue) == 1:
                self._cond.notify()

    def append_nowait(self, record: Record) -> None:
        """Queue without waiting (for synchronous callers that accept relaxed semantics)."""
        self.submit(record)

    def content(self, prompt: str | None, response: str | None,
                redacted_prompt: str | None = None,
                redacted_response: str | None = None) -> Content:
        """The content part of a request record as the configured ``content`` mode keeps it."""
        return shape_content(self.config.content, self._masters[0].content_hash_key, prompt,
                             response, redacted_prompt, redacted_response)

    # the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._busy or (not self._queue and not self._closing):
                    timeout = self._next_deadline() - time.monotonic()
                    if timeout <= 0 and not self._busy:
                        break
                    # busy: an inline write is under way; it notifies when it is done
                    self._cond.wait(timeout=min(max(timeout, 0.001), 3600.0))
                if self._failed is not None:
                    return  # a write failed inline: the state may be ahead of the disk
                batch, self._queue = self._queue, []
                closing = self._closing
                self._busy = True
            try:
                if batch:
                    self._write_batch(batch)
                self._periodic(force=closing and not batch)
                if self._retain and not closing and time.monotonic() >= self._next_retention:
                    purged = self._purge_due()
                    if purged is not None:
                        self._record_purge(purged)
            except BaseException as exc:  # disk full, I/O error: fail every waiter, stop
                self._fail(exc, batch)
                return
            finally:
                with self._cond:
                    self._busy = False
            if closing and not batch:
                return

    def _next_deadline(self) -> float:
        deadline = float("inf")
        if self._unsynced:
            deadline = self._last_fsync + self.config.fsync_interval_ms / 1000
        if self._since_checkpoint:
            deadline = min(deadline, self._last_checkpoint + self.config.checkpoint_every_seconds)
        if self._retain:
            deadline = min(deadline, self._next_retention)
        return deadline

    def _write_batch(self, batch: list[_Pending]) -> None:
        first = self._write_records([payload for payload, _ in batch])
        loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], int]]] = {}
        for offset, (_, future) in enumerate(batch):
            # A waiter that gave up (its request was cancelled) cancelled its future; the
            # record is written all the same, there is just nobody left to tell.
            if isinstance(future, Future):
                if future.set_running_or_notify_cancel():
                    future.set_result(first + offset)
            else:
                loops.setdefault(future.get_loop(), []).append((future, first + offset))
        for loop, waiters in loops.items():
            _call_on(loop, _resolve, waiters)

    def _write_records(self, payloads: list[bytes]) -> int:
        """Encrypt, frame, chain and write ``payloads`` (flushed in strict mode); the
        sequence number of the first. Only the holder of ``_busy`` calls this."""
        state, max_bytes = self._state, self.config.segment_max_bytes
        assert state is not None and self._cipher is not None
        chunks: list[bytes] = []
        size = 0
        for payload in payloads:
            seq = state.last_seq + 1
            body = frame_body(seq, self._cipher.seal(seq, payload))
            frame = encode_frame(body)
            if state.segment_records and state.segment_size + size + len(frame) > max_bytes:
                self._put(b"".join(chunks))
                chunks, size = [], 0
                self._begin_segment()
                assert self._cipher is not None
                body = frame_body(seq, self._cipher.seal(seq, payload))
                frame = encode_frame(body)
            state.link_from = state.head = link(state.link_from, body)
            state.last_seq = seq
            state.segment_records += 1
            chunks.append(frame)
            size += len(frame)
        self._put(b"".join(chunks))
        self._unsynced = True
        self._since_checkpoint += len(payloads)
        self.records_written += len(payloads)
        if self.config.durability == "strict":
            self._sync()
        return state.last_seq - len(payloads) + 1

    def _put(self, data: bytes) -> None:
        """Write ``data`` after the segment's records, into its zeros (extended first when
        they run out)."""
        state = self._state
        assert state is not None
        at = state.segment_size
        end = at + len(data)
        if end > self._allocated:
            size = max(end, min(self._allocated + PREALLOCATE_BYTES,
                                self.config.segment_max_bytes))
            while self._allocated < size:
                zeros = _ZEROS[:size - self._allocated]
                _pwrite_all(self._seg_fd, zeros, self._allocated)
                self._allocated += len(zeros)
        _pwrite_all(self._seg_fd, data, at)
        state.segment_size = end

    def _trim(self) -> None:
        """Cut the segment file back to its records (before it is closed), durably."""
        state = self._state
        assert state is not None
        if self._allocated > state.segment_size:
            os.ftruncate(self._seg_fd, state.segment_size)
            self._allocated = state.segment_size
            self._unsynced = True

    def _periodic(self, force: bool) -> None:
        now = time.monotonic()
        if self._unsynced and (force or now - self._last_fsync
                               >= self.config.fsync_interval_ms / 1000):
            self._sync()
        if self._since_checkpoint and (
                force or self._since_checkpoint >= self.config.checkpoint_every_records
                or now - self._last_checkpoint >= self.config.checkpoint_every_seconds):
            self._checkpoint()

    def _sync(self) -> None:
        os.fdatasync(self._seg_fd)
        self.fsyncs += 1
        self._unsynced = False
        self._last_fsync = time.monotonic()

    def _checkpoint(self) -> None:
        """Sign the head over records that are already on disk."""
        state, signer = self._state, self._signer
        assert state is not None and signer is not None and state.header is not None
        if self._unsynced:
            self._sync()
        checkpoint = sign_checkpoint(signer, state.checkpoint_index + 1, state.last_seq,
                                     state.head, state.header.index, time.time(),
                                     state.checkpoint_digest)
        line = checkpoint.line()
        _write_all(self._cp_fd, line)
        os.fdatasync(self._cp_fd)
        state.checkpoint_index, state.checkpoint_seq = checkpoint.index, checkpoint.seq
        state.checkpoint_digest = line_digest(line)
        self.checkpoints_written += 1
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()

    def _purge_due(self) -> PurgeResult | None:
        """Purge the due segments before the current one; what was purged, if anything. A
        failed purge is logged and tried again at the next check: it must not stop the log."""
        state, signer = self._state, self._signer
        assert state is not None and state.header is not None and signer is not None
        self._next_retention = time.monotonic() + self.config.retention_check_seconds
        try:
            result = purge_segments(self.data, self.config.retention_days, state.header.index,
                                    signer)
        except Exception:  # noqa: BLE001 - a damaged old segment, a missing key, disk trouble
            log.exception("audit retention: purge failed; retrying in %.0fs",
                          self.config.retention_check_seconds)
            return None
        self.segments_purged += result.segments
        return result if result.segments else None

    def _record_purge(self, result: PurgeResult) -> None:
        """Queue the ``purged`` event; the writer thread writes it even if ``close`` began."""
        event = admin_event("purged", segments=str(result.segments),
                            records=str(result.records), anchor_seq=str(result.anchor_seq))
        with self._cond:
            self._queue.append((encode_record(event), Future()))
            self._cond.notify()

    def _begin_segment(self) -> None:
        """Close the current segment durably and start the next one with a fresh data key."""
        state = self._state
        assert state is not None
        if self._seg_fd >= 0:
            self._trim()
            self._sync()
            os.close(self._seg_fd)
            self._seg_fd = -1
        master = self._masters[0]
        data_key = new_data_key()
        header = SegmentHeader(os.urandom(16), state.next_index, state.last_seq + 1, state.head,
                               time.time_ns(), master.key_id, master.wrap(data_key))
        path = segment_path(self.data.audit, header.index)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        _write_all(fd, header.encode())
        os.fsync(fd)
        fsync_dir(self.data.audit)
        self._seg_fd = fd
        self._cipher = RecordCipher(data_key, header.segment_id)
        state.segment_path, state.header = path, header
        state.segment_size, state.segment_records = HEADER_SIZE, 0
        self._allocated = HEADER_SIZE
        state.next_index = header.index + 1
        state.link_from = header.chain_start()

    def _fail(self, exc: BaseException, batch: list[_Pending]) -> None:
        with self._cond:
            self._failed = exc
            pending, self._queue = self._queue, []
        error = AuditUnavailable(f"audit write failed: {exc}")
        loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[int]]] = {}
        for _, future in batch + pending:
            if isinstance(future, Future):
                if not future.done():
                    future.set_exception(error)
            else:
                loops.setdefault(future.get_loop(), []).append(future)
        for loop, waiters in loops.items():
            _call_on(loop, _reject, waiters, error)


def _call_on(loop: asyncio.AbstractEventLoop, callback: Callable[..., None],
             *args: Any) -> None:
    """``callback(*args)`` on ``loop``, from the writer thread; a loop already closed has
    nobody left waiting."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        pass
