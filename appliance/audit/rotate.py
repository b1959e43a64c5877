"""Master-key rotation: re-wrap every segment's data key, never touching a record.

The new key is written first as ``secrets/audit-master.key.next``; each segment's 52-byte key
slot (master key id, wrapped data key, crc) is then rewritten in place and fsynced, and only
then does the new key replace ``audit-master.key``. Readers accept either key by id, so a crash
at any point leaves everything readable, and running the rotation again resumes it.

Where the master key comes from a systemd credential (``LoadCredential=audit-master.key``) the
appliance cannot replace it: the rotation re-wraps under the ``.next`` key and stops there; the
operator installs that file's content as the new credential, then runs the rotation once more,
which finishes by deleting ``.next``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from appliance.audit.crypto import (
    KEY_BYTES,
    MASTER_KEY_NAME,
    NEXT_MASTER_KEY_NAME,
    AuditKeyError,
    MasterKey,
    find_master,
    load_master_keys,
)
from appliance.audit.segments import HEADER_SIZE, KEY_SLOT_OFFSET, SegmentHeader, list_segments
from appliance.audit.writer import lock_audit_dir
from appliance.datadir import CREDENTIALS_ENV, DataDir


@dataclass(frozen=True, slots=True)
class RotateResult:
    rewrapped: int
    new_key_id: str
    #: False when the new key still has to be installed as a systemd credential.
    finished: bool


def _credential_in_use() -> bool:
    directory = os.environ.get(CREDENTIALS_ENV)
    return bool(directory) and (Path(directory or ".") / MASTER_KEY_NAME).is_file()


def rotate_master_key(data_dir: DataDir | Path, new_key: bytes | None = None) -> RotateResult:
    """Re-wrap all data keys under ``new_key`` (32 bytes; random when None)."""
    data = data_dir if isinstance(data_dir, DataDir) else DataDir(Path(data_dir))
    lock = lock_audit_dir(data.audit)
    try:
        pending = (data.secrets / NEXT_MASTER_KEY_NAME).read_bytes() \
            if (data.secrets / NEXT_MASTER_KEY_NAME).is_file() else None
        if pending is not None and new_key is not None and new_key != pending:
            raise AuditKeyError(f"a rotation to another key is unfinished ({NEXT_MASTER_KEY_NAME}"
                                "); run the rotation again without a new key to finish it")
        if pending is None:
            current = load_master_keys(data, create=False)[0]
            pending = new_key if new_key is not None else os.urandom(KEY_BYTES)
            if current.raw == pending:
                raise AuditKeyError("the new master key is the current one")
            MasterKey(pending)  # validates the length before anything is written
            data.write_secret(NEXT_MASTER_KEY_NAME, pending)
        target = MasterKey(pending)
        keys = load_master_keys(data, create=False)
        rewrapped = 0
        for _, path in list_segments(data.audit):
            rewrapped += _rewrap(path, keys, target)
        if _credential_in_use():
            current = load_master_keys(data, create=False)[0]
            if current.key_id != target.key_id:
                return RotateResult(rewrapped, target.key_id.hex(), finished=False)
        else:
            data.write_secret(MASTER_KEY_NAME, pending)
        (data.secrets / NEXT_MASTER_KEY_NAME).unlink()
        return RotateResult(rewrapped, target.key_id.hex(), finished=True)
    finally:
        os.close(lock)


def _rewrap(path: Path, keys: list[MasterKey], target: MasterKey) -> int:
    fd = os.open(path, os.O_RDWR)
    try:
        header = SegmentHeader.decode(os.pread(fd, HEADER_SIZE, 0))
        if header.master_key_id == target.key_id:
            return 0
        data_key = find_master(keys, header.master_key_id).unwrap(header.wrapped_key)
        new = SegmentHeader(header.segment_id, header.index, header.first_seq, header.prev_hash,
                            header.created_ns, target.key_id, target.wrap(data_key))
        os.pwrite(fd, new.key_slot(), KEY_SLOT_OFFSET)
        os.fsync(fd)
        return 1
    finally:
        os.close(fd)
