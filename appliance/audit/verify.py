"""``verify``: prove the log is complete and unaltered, or name the first thing that is not.

Checks, in order: the anchor's signature (after a purge); every segment header (format, index,
first sequence number, and that its ``prev_hash`` is the chain head after the previous segment,
which catches swapped, missing or replaced segments); every frame (checksum, sequence number
continuity, which catches deleted and reordered records, and the AES-GCM tag, which catches any
altered byte even with a recomputed checksum); the hash chain; and every checkpoint (decodable,
consecutive, chained to the previous line, signed by this device's key, and naming the head the
records actually produce). A torn tail is reported too: after a crash, opening the writer
repairs it and records the repair.

Limit, as with CloudTrail: records appended after the last checkpoint and then cut off at a
clean frame boundary cannot be told from records never written; checkpoints (and central's
copies of them) bound that window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance.audit.checkpoints import (
    Checkpoint,
    decode_checkpoint,
    line_digest,
    read_anchor,
    read_checkpoint_lines,
    signature_ok,
)
from appliance.audit.crypto import (
    AuditKeyError,
    MasterKey,
    RecordCipher,
    find_master,
    load_master_keys,
    load_signing_key,
)
from appliance.audit.segments import (
    HEADER_SIZE,
    ZERO_HASH,
    FormatError,
    SegmentHeader,
    Tail,
    link,
    list_segments,
    scan,
)
from appliance.datadir import DataDir


@dataclass(slots=True)
class VerifyReport:
    records: int = 0
    segments: int = 0
    checkpoints: int = 0
    last_seq: int = 0
    #: Each names where: ``segment-00000002.aud seq 17: ...`` or ``checkpoint #3: ...``.
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> str | None:
        return self.problems[0] if self.problems else None


def verify(data_dir: DataDir | Path, since: datetime | None = None) -> VerifyReport:
    """Verify the whole log, or (``since``) from the last checkpoint before that time: the
    checkpoint chain is still checked in full, the records from that checkpoint's head on."""
    data = data_dir if isinstance(data_dir, DataDir) else DataDir(Path(data_dir))
    report = VerifyReport()
    try:
        masters = load_master_keys(data, create=False)
        signer = load_signing_key(data, create=False)
    except AuditKeyError as exc:
        report.problems.append(f"keys: {exc}")
        return report
    public, key_id = signer.public, signer.key_id
    audit = data.audit
    anchor = read_anchor(audit)
    seq, head, index = 0, ZERO_HASH, 1
    if anchor is not None:
        if anchor.key_id != key_id or not signature_ok(public, anchor.signed_bytes(), anchor.sig):
            report.problems.append("anchor.json: signature does not verify")
            return report
        seq, head, index = anchor.seq, bytes.fromhex(anchor.head), anchor.next_segment
    checkpoint_problems: list[str] = []
    checkpoints = _check_checkpoints(audit, report, checkpoint_problems, public, key_id)
    start_after = seq
    if since is not None:
        cutoff = since.timestamp()
        for checkpoint in checkpoints.values():
            if checkpoint.time < cutoff and checkpoint.seq > start_after:
                start_after, head = checkpoint.seq, bytes.fromhex(checkpoint.head)
    heads: dict[int, bytes] = {}
    segments = [(i, p) for i, p in list_segments(audit) if i >= index]
    next_first = [0] * len(segments)
    if start_after > seq:  # only --since skips segments, by where the next one starts
        next_first = [_first_seq(p) for _, p in segments[1:]] + [0]
    verified_to = _check_segments(segments, next_first, index, seq, start_after, head, masters,
                                  report, heads)
    records_ok = report.ok
    for number, checkpoint in checkpoints.items():
        if checkpoint.seq <= start_after:
            continue
        if checkpoint.seq > verified_to:
            if records_ok:
                checkpoint_problems.append(
                    f"checkpoint #{number}: covers seq {checkpoint.seq} but the log ends at "
                    f"seq {verified_to} (records missing)")
            break
        if heads.get(checkpoint.seq) != bytes.fromhex(checkpoint.head):
            checkpoint_problems.append(f"checkpoint #{number}: chain head at seq "
                                       f"{checkpoint.seq} differs from the records")
            break
    report.problems.extend(checkpoint_problems)
    return report


def _first_seq(path: Path) -> int:
    with path.open("rb") as file:
        try:
            return SegmentHeader.decode(file.read(HEADER_SIZE)).first_seq
        except FormatError:
            return 0


def _check_checkpoints(audit: Path, report: VerifyReport, problems: list[str],
                       public: Ed25519PublicKey, key_id: str) -> dict[int, Checkpoint]:
    """Line number (1-based) -> checkpoint, up to the first bad line (which is reported)."""
    good: dict[int, Checkpoint] = {}
    prev_digest, prev_index = "", 0
    for number, line in enumerate(read_checkpoint_lines(audit), start=1):
        where = f"checkpoint #{number}"
        try:
            if not line.endswith(b"\n"):
                raise ValueError("torn line")
            checkpoint = decode_checkpoint(line)
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            problems.append(f"{where}: unreadable ({exc})")
            break
        if checkpoint.key_id != key_id:
            problems.append(f"{where}: signed by unknown key {checkpoint.key_id}")
            break
        if not signature_ok(public, checkpoint.signed_bytes(), checkpoint.sig):
            problems.append(f"{where}: signature does not verify")
            break
        if checkpoint.index != prev_index + 1 or checkpoint.prev != prev_digest:
            problems.append(f"{where}: does not follow checkpoint #{number - 1} "
                                   "(a checkpoint was removed, reordered or replaced)")
            break
        good[number] = checkpoint
        prev_digest, prev_index = line_digest(line), checkpoint.index
        report.checkpoints += 1
    return good


def _check_segments(segments: list[tuple[int, Path]], next_first: list[int], index: int,
                    seq: int, start_after: int, head: bytes, masters: list[MasterKey],
                    report: VerifyReport, heads: dict[int, bytes]) -> int:
    """Walk the records; returns the last seq verified (the chain is intact up to it)."""
    expected_index = index
    for (file_index, path), following in zip(segments, next_first):
        name = path.name
        report.segments += 1
        if following and following <= start_after + 1 and file_index == expected_index:
            expected_index += 1
            seq = following - 1
            continue
        data = path.read_bytes()
        try:
            header = SegmentHeader.decode(data)
        except FormatError as exc:
            report.problems.append(f"{name}: {exc}")
            return seq
        if file_index != expected_index or header.index != expected_index:
            report.problems.append(f"{name}: expected segment {expected_index} here, found "
                                   f"segment {header.index} (segments missing or swapped)")
            return seq
        if header.first_seq != seq + 1 or (seq >= start_after and header.prev_hash != head):
            report.problems.append(f"{name}: does not follow the previous segment (first seq "
                                   f"{header.first_seq}, expected {seq + 1}; segments missing, "
                                   "swapped or replaced)")
            return seq
        try:
            cipher = RecordCipher(find_master(masters, header.master_key_id).unwrap(
                header.wrapped_key), header.segment_id)
        except Exception as exc:
            report.problems.append(f"{name}: data key cannot be unwrapped ({exc})")
            return seq
        link_from = header.chain_start()
        tail: list[Tail] = []
        for frame in scan(data, tail):
            if frame.seq != seq + 1:
                report.problems.append(f"{name} seq {seq + 1} (offset {frame.offset}): found seq "
                                       f"{frame.seq} instead (record deleted or reordered)")
                return seq
            seq = frame.seq
            if seq <= start_after:
                link_from = head if seq == start_after else link_from
                continue
            try:
                cipher.open(seq, frame.sealed)
            except InvalidTag:
                report.problems.append(f"{name} seq {seq} (offset {frame.offset}): record "
                                       "fails authentication (altered)")
                return seq - 1
            link_from = head = link(link_from, frame.body)
            heads[seq] = head
            report.records += 1
            report.last_seq = seq
        if tail[0].kind != "clean":
            report.problems.append(f"{name} seq {seq + 1} (offset {tail[0].offset}): "
                                   f"{tail[0].kind} frame: {tail[0].reason}")
            return seq
        expected_index += 1
    return seq
