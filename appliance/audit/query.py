"""Decrypting search and export, for auditors and for ``appliance audit search|export``.

Reading needs the audit master key, so it runs on the box (or wherever the key was taken
deliberately). Records are read in order, segment by segment, while the running daemon may be
appending and purging: each segment is read as it stands and only its complete frames are used
(a frame being written is a torn tail, which ends that segment's scan and is not an error), the
newest segment is skipped while its header is still being written, and a segment retention
deleted after it was listed is skipped. Filters apply to decrypted fields, so they cost a full
scan: the log is built for proof and export, not as an index.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import msgspec

from appliance.audit.crypto import RecordCipher, find_master, load_master_keys
from appliance.audit.records import AdminEvent, Record, RequestRecord, decode_record
from appliance.audit.segments import HEADER_SIZE, SegmentHeader, Tail, list_segments, scan
from appliance.datadir import DataDir

SENSITIVITY_LEVELS = ("public", "internal", "confidential", "restricted")


@dataclass(frozen=True, slots=True)
class Filters:
    """Every given field must match; ``sensitivity`` matches that level *or higher*."""

    since: datetime | None = None
    until: datetime | None = None
    type: str | None = None  # "request" | "admin"
    tenant: str | None = None
    department: str | None = None
    app: str | None = None
    key_id: str | None = None
    user: str | None = None
    model: str | None = None  # requested or served
    zone: str | None = None
    sensitivity: str | None = None
    action: str | None = None

    def match(self, record: Record) -> bool:
        if self.since is not None and record.time < self.since.timestamp():
            return False
        if self.until is not None and record.time >= self.until.timestamp():
            return False
        if isinstance(record, AdminEvent):
            return self.type in (None, "admin") and not self._request_only()
        if self.type == "admin":
            return False
        return self._match_request(record)

    def _request_only(self) -> bool:
        return any(v is not None for v in (self.tenant, self.department, self.app, self.key_id,
                                           self.user, self.model, self.zone, self.sensitivity,
                                           self.action))

    def _match_request(self, r: RequestRecord) -> bool:
        p = r.principal
        pairs = ((self.tenant, p.tenant), (self.department, p.department), (self.app, p.app),
                 (self.key_id, p.key_id), (self.user, p.user), (self.zone, r.zone),
                 (self.action, r.action))
        if any(want is not None and want != have for want, have in pairs):
            return False
        if self.model is not None and self.model not in (r.model_requested, r.model_served):
            return False
        if self.sensitivity is not None:
            level = SENSITIVITY_LEVELS.index(self.sensitivity) \
                if self.sensitivity in SENSITIVITY_LEVELS else -1
            have = SENSITIVITY_LEVELS.index(r.sensitivity) \
                if r.sensitivity in SENSITIVITY_LEVELS else -1
            return have >= level if level >= 0 else r.sensitivity == self.sensitivity
        return True


def iter_records(data_dir: DataDir | Path) -> Iterator[tuple[int, Record]]:
    """(seq, record) for every readable record, oldest first. Integrity is ``verify``'s job;
    a record that fails authentication here raises rather than being shown."""
    for _, seq, record in iter_segment_records(data_dir):
        yield seq, record


def iter_segment_records(data_dir: DataDir | Path) -> Iterator[tuple[int, int, Record]]:
    """(segment index, seq, record), oldest first; safe beside the running writer (see the
    module docstring). Damage that is not a torn tail also ends a segment's scan: naming it
    is ``verify``'s job."""
    data = data_dir if isinstance(data_dir, DataDir) else DataDir(Path(data_dir))
    masters = load_master_keys(data, create=False)
    segments = list_segments(data.audit)
    for position, (index, path) in enumerate(segments):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue  # purged by retention since it was listed
        if len(raw) < HEADER_SIZE and position == len(segments) - 1:
            continue  # just created by the writer; its header is not written yet
        header = SegmentHeader.decode(raw)
        cipher = RecordCipher(find_master(masters, header.master_key_id).unwrap(
            header.wrapped_key), header.segment_id)
        tail: list[Tail] = []
        for frame in scan(raw, tail):
            yield index, frame.seq, decode_record(cipher.open(frame.seq, frame.sealed))


def search(data_dir: DataDir | Path, filters: Filters,
           limit: int | None = None) -> Iterator[tuple[int, Record]]:
    found = 0
    for seq, record in iter_records(data_dir):
        if filters.match(record):
            yield seq, record
            found += 1
            if limit is not None and found >= limit:
                return


def as_json_object(seq: int, record: Record) -> dict[str, Any]:
    """Export form: ``seq`` and an ISO-8601 ``time`` first, then the record's fields."""
    fields: dict[str, Any] = msgspec.to_builtins(record)
    fields["time"] = datetime.fromtimestamp(record.time, UTC).isoformat()
    return {"seq": seq, **fields}


def export_jsonl(data_dir: DataDir | Path, filters: Filters, out: IO[bytes]) -> int:
    """Write matching records as JSON lines; returns how many."""
    count = 0
    for seq, record in search(data_dir, filters):
        out.write(msgspec.json.encode(as_json_object(seq, record)) + b"\n")
        count += 1
    return count
