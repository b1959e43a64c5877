"""Every kind of tampering is detected, and verify names where."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.audit import AuditLog, verify
from appliance.audit.checkpoints import decode_checkpoint
from appliance.audit.crypto import SigningKey
from appliance.audit.segments import Frame, Tail, list_segments, scan
from tests.appliance.audit.conftest import SMALL, request


@pytest.fixture
def log_dir(data_dir: Path) -> Path:
    """~150 records in waves of 10 (so checkpoints every 10) over several segments."""
    log = AuditLog(data_dir, SMALL)
    log.start()
    try:
        for wave in range(15):
            futures = [log.submit(request(wave * 10 + i)) for i in range(10)]
            for future in futures:
                future.result()
    finally:
        log.close()
    report = verify(data_dir)
    assert report.ok, report.problems
    assert report.segments >= 4 and report.checkpoints >= 10
    return data_dir


def segment(data_dir: Path, n: int) -> Path:
    return list_segments(data_dir / "audit")[n][1]


def frames(path: Path) -> list[Frame]:
    tail: list[Tail] = []
    return list(scan(path.read_bytes(), tail))


def frame_end(path: Path, frame: Frame) -> int:
    return frame.offset + 4 + len(frame.body) + 4


def only_problem(data_dir: Path) -> str:
    report = verify(data_dir)
    assert not report.ok
    assert report.first_problem is not None
    return report.first_problem


def test_flipped_byte_is_named(log_dir: Path) -> None:
    path = segment(log_dir, 1)
    target = frames(path)[3]
    data = bytearray(path.read_bytes())
    data[target.offset + 40] ^= 0x01
    path.write_bytes(bytes(data))
    problem = only_problem(log_dir)
    assert problem.startswith(f"{path.name} seq {target.seq} ")
    assert "corrupt" in problem


def test_flipped_byte_with_fixed_checksum_fails_authentication(log_dir: Path) -> None:
    path = segment(log_dir, 1)
    target = frames(path)[3]
    data = bytearray(path.read_bytes())
    data[target.offset + 40] ^= 0x01
    end = frame_end(path, target)
    data[end - 4:end] = struct.pack(">I", zlib.crc32(bytes(data[target.offset:end - 4])))
    path.write_bytes(bytes(data))
    problem = only_problem(log_dir)
    assert problem.startswith(f"{path.name} seq {target.seq} ") and "authentication" in problem


def test_deleted_record_is_named(log_dir: Path) -> None:
    path = segment(log_dir, 1)
    target = frames(path)[2]
    data = path.read_bytes()
    path.write_bytes(data[:target.offset] + data[frame_end(path, target):])
    problem = only_problem(log_dir)
    assert problem.startswith(f"{path.name} seq {target.seq} ") and "deleted" in problem


def test_reordered_records_are_named(log_dir: Path) -> None:
    path = segment(log_dir, 2)
    first, second = frames(path)[1:3]
    data = path.read_bytes()
    a = data[first.offset:frame_end(path, first)]
    b = data[second.offset:frame_end(path, second)]
    path.write_bytes(data[:first.offset] + b + a + data[frame_end(path, second):])
    problem = only_problem(log_dir)
    assert problem.startswith(f"{path.name} seq {first.seq} ") and "reordered" in problem


@pytest.mark.parametrize("which", [1, -1])
def test_segment_truncated_mid_record_is_named(log_dir: Path, which: int) -> None:
    path = segment(log_dir, which)
    target = frames(path)[-2]
    with path.open("r+b") as file:
        file.truncate(target.offset + 10)
    problem = only_problem(log_dir)
    assert problem.startswith(f"{path.name} seq {target.seq} ") and "torn" in problem


def test_records_cut_at_a_frame_boundary_are_caught_by_checkpoints(log_dir: Path) -> None:
    path = segment(log_dir, -1)
    target = frames(path)[0]
    with path.open("r+b") as file:
        file.truncate(target.offset)
    problem = only_problem(log_dir)
    assert problem.startswith("checkpoint #") and "records missing" in problem


def test_swapped_segments_are_named(log_dir: Path) -> None:
    one, two = segment(log_dir, 1), segment(log_dir, 2)
    a, b = one.read_bytes(), two.read_bytes()
    one.write_bytes(b)
    two.write_bytes(a)
    problem = only_problem(log_dir)
    assert problem.startswith(f"{one.name}: expected segment 2 here, found segment 3")


def test_deleted_segment_is_named(log_dir: Path) -> None:
    gone = segment(log_dir, 1)
    after = segment(log_dir, 2)
    gone.unlink()
    problem = only_problem(log_dir)
    assert problem.startswith(f"{after.name}: expected segment 2 here")


def checkpoint_lines(data_dir: Path) -> list[bytes]:
    return (data_dir / "audit" / "checkpoints.jsonl").read_bytes().splitlines(keepends=True)


def put_lines(data_dir: Path, lines: list[bytes]) -> None:
    (data_dir / "audit" / "checkpoints.jsonl").write_bytes(b"".join(lines))


def test_edited_checkpoint_is_named(log_dir: Path) -> None:
    lines = checkpoint_lines(log_dir)
    edited = decode_checkpoint(lines[4])
    forged = type(edited)(**{**{f: getattr(edited, f) for f in edited.__struct_fields__},
                             "head": "00" * 32})
    lines[4] = forged.line()
    put_lines(log_dir, lines)
    assert only_problem(log_dir) == "checkpoint #5: signature does not verify"


def test_checkpoint_forged_with_another_key_is_named(log_dir: Path) -> None:
    lines = checkpoint_lines(log_dir)
    original = decode_checkpoint(lines[2])
    from appliance.audit.checkpoints import sign_checkpoint

    intruder = SigningKey(Ed25519PrivateKey.generate())
    forged = sign_checkpoint(intruder, original.index, original.seq, bytes(32),
                             original.segment, original.time, original.prev)
    lines[2] = forged.line()
    put_lines(log_dir, lines)
    assert only_problem(log_dir).startswith("checkpoint #3: signed by unknown key")


def test_deleted_checkpoint_line_is_named(log_dir: Path) -> None:
    lines = checkpoint_lines(log_dir)
    del lines[3]
    put_lines(log_dir, lines)
    assert only_problem(log_dir).startswith("checkpoint #4: does not follow checkpoint #3")


def test_replaced_checkpoint_line_is_named(log_dir: Path) -> None:
    lines = checkpoint_lines(log_dir)
    lines[6] = lines[5]  # a genuine, correctly signed line in the wrong place
    put_lines(log_dir, lines)
    assert only_problem(log_dir).startswith("checkpoint #7: does not follow checkpoint #6")
