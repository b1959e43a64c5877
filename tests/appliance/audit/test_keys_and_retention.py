"""Master-key rotation and retention keep the log readable and verifiable."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from appliance.audit import AuditLog, verify
from appliance.audit.crypto import NEXT_MASTER_KEY_NAME, AuditKeyError
from appliance.audit.query import iter_records
from appliance.audit.retention import purge
from appliance.audit.rotate import rotate_master_key
from appliance.audit.segments import list_segments
from appliance.audit.writer import AuditLocked
from tests.appliance.audit.conftest import SMALL, write


def test_rotation_rewraps_without_rewriting_records(data_dir: Path) -> None:
    write(data_dir, 60)
    secrets = data_dir / "secrets"
    old_key = (secrets / "audit-master.key").read_bytes()
    before = {p.name: p.read_bytes()[256:] for _, p in list_segments(data_dir / "audit")}
    result = rotate_master_key(data_dir, b"\x42" * 32)
    assert result.finished and result.rewrapped == len(before)
    assert (secrets / "audit-master.key").read_bytes() == b"\x42" * 32 != old_key
    assert not (secrets / NEXT_MASTER_KEY_NAME).exists()
    after = {p.name: p.read_bytes()[256:] for _, p in list_segments(data_dir / "audit")}
    assert after == before  # record bytes untouched
    assert verify(data_dir).ok
    assert len(list(iter_records(data_dir))) == 62
    write(data_dir, 5)  # the writer continues under the new key
    assert verify(data_dir).ok
    (secrets / "audit-master.key").write_bytes(old_key)  # the old key no longer opens it
    with pytest.raises(AuditKeyError):
        list(iter_records(data_dir))


def test_interrupted_rotation_stays_readable_and_resumes(data_dir: Path) -> None:
    write(data_dir, 40)
    secrets = data_dir / "secrets"
    (secrets / NEXT_MASTER_KEY_NAME).write_bytes(b"\x07" * 32)  # as if killed mid-way
    from appliance.audit.crypto import MasterKey
    from appliance.audit.rotate import _rewrap
    from appliance.audit.crypto import load_master_keys
    from appliance.datadir import DataDir

    keys = load_master_keys(DataDir(data_dir), create=False)
    _rewrap(list_segments(data_dir / "audit")[0][1], keys, MasterKey(b"\x07" * 32))
    assert verify(data_dir).ok  # one segment under each key
    result = rotate_master_key(data_dir)
    assert result.finished and (secrets / "audit-master.key").read_bytes() == b"\x07" * 32
    assert verify(data_dir).ok


def test_rotation_refused_while_the_writer_runs(data_dir: Path) -> None:
    log = AuditLog(data_dir, SMALL)
    log.start()
    try:
        with pytest.raises(AuditLocked):
            rotate_master_key(data_dir)
    finally:
        log.close()


def test_purge_keeps_verify_passing_from_the_anchor(data_dir: Path) -> None:
    write(data_dir, 80)
    write(data_dir, 10)
    segments = list_segments(data_dir / "audit")
    assert len(segments) >= 2
    # Ten days on, with five days' retention: every segment but the current one goes.
    result = purge(data_dir, retention_days=5, now=time.time() + 10 * 86400)
    assert result.segments == len(segments) - 1
    assert purge(data_dir, retention_days=5).segments == 0  # nothing recent goes
    assert (data_dir / "audit" / "anchor.json").exists()
    report = verify(data_dir)
    assert report.ok, report.problems
    kept = [seq for seq, _ in iter_records(data_dir)]
    assert kept[0] == result.anchor_seq + 1 and kept[-1] == 94
    # deleting a further segment behind the anchor's back is still caught
    list_segments(data_dir / "audit")[0][1].unlink()
    assert not verify(data_dir).ok


def test_forged_anchor_is_named(data_dir: Path) -> None:
    write(data_dir, 80)
    purge(data_dir, retention_days=1, now=time.time() + 5 * 86400)
    anchor = data_dir / "audit" / "anchor.json"
    anchor.write_bytes(anchor.read_bytes().replace(b'"seq":', b'"seq":1'))
    assert verify(data_dir).first_problem == "anchor.json: signature does not verify"
