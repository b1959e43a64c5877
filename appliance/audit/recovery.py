"""Where the log stands when a writer opens it, repairing what a crash left behind.

After a SIGKILL or power loss the last segment may end in a torn frame and the checkpoint file
in a torn line: both are cut off at the last intact boundary and the cut is reported as a note,
which the writer then records as an admin event (so the repair itself is on the record). A
segment whose header never made it to disk is removed. Damage that is not a torn tail (a bad
frame followed by good data) is left untouched for ``verify`` to name; the writer carries on in
a fresh segment chained from the last intact record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from appliance.audit.checkpoints import (
    CHECKPOINTS_FILE,
    decode_checkpoint,
    line_digest,
    read_anchor,
    read_checkpoint_lines,
)
from appliance.audit.segments import (
    ZERO_HASH,
    FormatError,
    SegmentHeader,
    Tail,
    link,
    list_segments,
    scan,
)


class AuditCorrupt(Exception):
    """The log cannot be continued safely; run ``appliance audit verify``."""


@dataclass(slots=True)
class LogState:
    """The chain position a writer continues from."""

    #: The segment to append to, or None when a new one must be begun.
    segment_path: Path | None
    header: SegmentHeader | None
    segment_size: int
    segment_records: int
    next_index: int
    last_seq: int
    #: Chain head after ``last_seq`` (what a checkpoint signs and the next header's prev_hash).
    head: bytes
    #: What the next record links from (``chain_start`` of a segment not yet written to).
    link_from: bytes
    checkpoint_index: int = 0
    checkpoint_digest: str = ""
    checkpoint_seq: int = 0
    notes: list[dict[str, str]] = field(default_factory=list)


def _truncate(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def recover(audit_dir: Path) -> LogState:
    anchor = read_anchor(audit_dir)
    base_seq, base_head = (anchor.seq, bytes.fromhex(anchor.head)) if anchor else (0, ZERO_HASH)
    base_index = anchor.next_segment if anchor else 1
    notes: list[dict[str, str]] = []
    segments = list_segments(audit_dir)
    if segments:
        index, path = segments[-1]
        data = path.read_bytes()
        try:
            header = SegmentHeader.decode(data)
        except FormatError as exc:
            if len(data) > 4096 and data[4096:].strip(b"\0"):
                raise AuditCorrupt(f"{path.name}: {exc}") from exc
            path.unlink()  # created but never written: a crash during rotation
            notes.append({"segment": path.name, "problem": f"removed: {exc}"})
            segments.pop()
            state = recover_from_previous(audit_dir, segments, base_seq, base_head, base_index)
            state.notes[:0] = notes
            return _with_checkpoints(audit_dir, state)
        state = _scan_last(path, data, header, notes)
    else:
        state = LogState(None, None, 0, 0, base_index, base_seq, base_head, base_head,
                         notes=notes)
    return _with_checkpoints(audit_dir, state)


def recover_from_previous(audit_dir: Path, segments: list[tuple[int, Path]], base_seq: int,
                          base_head: bytes, base_index: int) -> LogState:
    if not segments:
        return LogState(None, None, 0, 0, base_index, base_seq, base_head, base_head)
    _, path = segments[-1]
    data = path.read_bytes()
    state = _scan_last(path, data, SegmentHeader.decode(data), [])
    state.segment_path = None  # begin a new one: the crash happened while rotating away
    return state


def _scan_last(path: Path, data: bytes, header: SegmentHeader,
               notes: list[dict[str, str]]) -> LogState:
    head = header.prev_hash
    link_from = header.chain_start()
    last_seq = header.first_seq - 1
    records = 0
    tail: list[Tail] = []
    for frame in scan(data, tail):
        link_from = head = link(link_from, frame.body)
        last_seq = frame.seq
        records += 1
    end = tail[0]
    size = len(data)
    state = LogState(path, header, end.offset, records, header.index + 1, last_seq, head,
                     link_from, notes=notes)
    if end.kind == "torn":
        _truncate(path, end.offset)
        state.segment_size = end.offset
        notes.append({"segment": path.name, "offset": str(end.offset),
                      "dropped_bytes": str(size - end.offset), "problem": end.reason,
                      "kind": "recovered_torn_tail"})
    elif end.kind == "corrupt":
        state.segment_path = None
        notes.append({"segment": path.name, "offset": str(end.offset), "problem": end.reason,
                      "kind": "verification_failed"})
    return state


def _with_checkpoints(audit_dir: Path, state: LogState) -> LogState:
    """Continue the checkpoint chain from the last readable line. Only a damaged *last* line
    is a crash's leftover and is cut; damage earlier is evidence and stays for ``verify``."""
    lines = read_checkpoint_lines(audit_dir)
    kept = 0
    for number, line in enumerate(lines):
        try:
            if not line.endswith(b"\n"):
                raise ValueError("unterminated")
            checkpoint = decode_checkpoint(line)
        except Exception:
            if number == len(lines) - 1:
                _truncate(audit_dir / CHECKPOINTS_FILE, kept)
                state.notes.append({"file": CHECKPOINTS_FILE, "offset": str(kept),
                                    "dropped_bytes": str(len(line)),
                                    "kind": "recovered_torn_tail",
                                    "problem": "torn checkpoint line"})
            kept += len(line)
            continue
        kept += len(line)
        state.checkpoint_index = checkpoint.index
        state.checkpoint_digest = line_digest(line)
        state.checkpoint_seq = checkpoint.seq
    return state
