"""Retention: purge whole segments older than the policy's period, behind a signed anchor.

A segment goes only when its *newest* record is older than the cutoff (a segment's records are
in time order), and never the segment being written. Before deleting anything the purge writes
``anchor.json`` signing the chain state after the last purged record; ``verify`` then starts
from the anchor, and a segment deleted without one (or beyond it) is still caught. It runs under
the writer's lock: the running daemon's writer purges from its own thread
(``purge_segments``), and ``appliance audit purge`` takes the lock itself (``purge``), so it
runs only while the daemon is stopped.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.audit.checkpoints import fsync_dir, read_anchor, sign_anchor, write_anchor
from appliance.audit.crypto import (
    MasterKey,
    RecordCipher,
    SigningKey,
    find_master,
    load_master_keys,
    load_signing_key,
)
from appliance.audit.records import decode_record
from appliance.audit.segments import SegmentHeader, Tail, link, list_segments, scan
from appliance.datadir import DataDir


@dataclass(frozen=True, slots=True)
class PurgeResult:
    segments: int
    records: int
    anchor_seq: int


@dataclass(frozen=True, slots=True)
class _SegmentEnd:
    """What a purge needs of a segment: its last record's time and the chain after it."""

    first_seq: int
    last_seq: int
    head: bytes
    newest: float


def _segment_end(raw: bytes, masters: list[MasterKey]) -> _SegmentEnd | None:
    """None for a segment without records or not ending cleanly: it is kept (a damaged one
    for ``verify`` to name; purging it would hide the damage behind a fresh anchor)."""
    header = SegmentHeader.decode(raw)
    link_from = header.chain_start()
    tail: list[Tail] = []
    last = None
    for frame in scan(raw, tail):
        link_from = link(link_from, frame.body)
        last = frame
    if last is None or tail[-1].kind != "clean":
        return None
    cipher = RecordCipher(find_master(masters, header.master_key_id).unwrap(header.wrapped_key),
                          header.segment_id)
    newest = decode_record(cipher.open(last.seq, last.sealed)).time
    return _SegmentEnd(header.first_seq, last.seq, link_from, newest)


def purge_segments(data: DataDir, retention_days: float, keep_from: int, signer: SigningKey,
                   now: float | None = None) -> PurgeResult:
    """Delete the oldest segments, up to (not including) segment ``keep_from``, whose records
    are all older than ``retention_days``. The caller holds the writer's lock."""
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    masters = load_master_keys(data, create=False)
    doomed: list[tuple[int, Path]] = []
    first: _SegmentEnd | None = None
    last: _SegmentEnd | None = None
    for index, path in list_segments(data.audit):
        if index >= keep_from:
            break
        end = _segment_end(path.read_bytes(), masters)
        if end is None or end.newest >= cutoff:
            break
        doomed.append((index, path))
        first = end if first is None else first
        last = end
    if first is None or last is None:
        anchor = read_anchor(data.audit)
        return PurgeResult(0, 0, anchor.seq if anchor else 0)
    write_anchor(data.audit, sign_anchor(signer, last.last_seq, last.head, doomed[-1][0] + 1,
                                         cutoff, time.time()))
    for _, path in doomed:
        os.unlink(path)
    fsync_dir(data.audit)
    return PurgeResult(len(doomed), last.last_seq - first.first_seq + 1, last.last_seq)


def purge(data_dir: DataDir | Path, retention_days: float, now: float | None = None) -> PurgeResult:
    """Offline purge (``appliance audit purge``): take the writer's lock, then purge every due
    segment but the last; raises ``AuditLocked`` while the daemon runs (it purges itself)."""
    from appliance.audit.writer import lock_audit_dir  # the writer imports this module

    data = data_dir if isinstance(data_dir, DataDir) else DataDir(Path(data_dir))
    lock = lock_audit_dir(data.audit)
    try:
        segments = list_segments(data.audit)
        if not segments:
            anchor = read_anchor(data.audit)
            return PurgeResult(0, 0, anchor.seq if anchor else 0)
        return purge_segments(data, retention_days, segments[-1][0],
                              load_signing_key(data, create=False), now)
    finally:
        os.close(lock)
