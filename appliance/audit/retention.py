"""Retention: purge whole segments older than the policy's period, behind a signed anchor.

A segment goes only when its *newest* record is older than the cutoff (a segment's records are
in time order), and never the segment being written. Before deleting anything the purge writes
``anchor.json`` signing the chain state after the last purged record; ``verify`` then starts
from the anchor, and a segment deleted without one (or beyond it) is still caught. Runs under
the writer's lock, so it is an offline operation (or one the daemon performs itself).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.audit.checkpoints import fsync_dir, read_anchor, sign_anchor, write_anchor
from appliance.audit.crypto import load_signing_key
from appliance.audit.query import iter_segment_records
from appliance.audit.segments import SegmentHeader, Tail, link, list_segments, scan
from appliance.audit.writer import lock_audit_dir
from appliance.datadir import DataDir


@dataclass(frozen=True, slots=True)
class PurgeResult:
    segments: int
    records: int
    anchor_seq: int


def purge(data_dir: DataDir | Path, retention_days: float, now: float | None = None) -> PurgeResult:
    """Delete segments whose records are all older than ``retention_days``."""
    data = data_dir if isinstance(data_dir, DataDir) else DataDir(Path(data_dir))
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    lock = lock_audit_dir(data.audit)
    try:
        segments = list_segments(data.audit)
        anchor = read_anchor(data.audit)
        # Records are read once, in order, to learn each segment's newest time and end head.
        newest: dict[int, float] = {}
        for index, _, record in iter_segment_records(data):
            newest[index] = record.time
        doomed = []
        for index, path in segments[:-1]:  # never the last (current) segment
            if index not in newest or newest[index] >= cutoff:
                break
            doomed.append((index, path))
        if not doomed:
            return PurgeResult(0, 0, anchor.seq if anchor else 0)
        last_path = doomed[-1][1]
        raw = last_path.read_bytes()
        header = SegmentHeader.decode(raw)
        head, last_seq = header.prev_hash, header.first_seq - 1
        link_from = header.chain_start()
        tail: list[Tail] = []
        for frame in scan(raw, tail):
            link_from = head = link(link_from, frame.body)
            last_seq = frame.seq
        first_seq = SegmentHeader.decode(doomed[0][1].read_bytes()).first_seq
        signer = load_signing_key(data, create=False)
        write_anchor(data.audit, sign_anchor(signer, last_seq, head, doomed[-1][0] + 1, cutoff,
                                             time.time()))
        for _, path in doomed:
            os.unlink(path)
        fsync_dir(data.audit)
        return PurgeResult(len(doomed), last_seq - first_seq + 1, last_seq)
    finally:
        os.close(lock)
