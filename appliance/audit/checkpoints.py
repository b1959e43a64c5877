"""Signed checkpoints of the chain head, and the signed anchor left by a purge.

``audit/checkpoints.jsonl`` gets one JSON line every N records or T seconds (whichever first),
written only after the records it covers are fsynced. Each line signs, with the device's
Ed25519 key, the head of the hash chain after record ``seq`` and the digest of the previous
line, so checkpoints form a chain of their own: deleting, reordering or replacing a line breaks
it, and a forged line fails its signature. These lines are what central sync collects; with them
central can later prove that the box's log was not rewritten, even if the box itself is lost.

``audit/anchor.json`` is written by a retention purge before it deletes any segment: it signs
the chain state at the purge point (last purged ``seq``, its ``head``, the first retained
segment), so verification starts there instead of at record 1.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance.audit.crypto import SigningKey

CHECKPOINTS_FILE = "checkpoints.jsonl"
ANCHOR_FILE = "anchor.json"
_CHECKPOINT_DOMAIN = b"appliance audit checkpoint v1\n"
_ANCHOR_DOMAIN = b"appliance audit anchor v1\n"


class Checkpoint(msgspec.Struct, kw_only=True, frozen=True):
    index: int
    seq: int
    head: str
    segment: int
    time: float
    prev: str
    key_id: str
    sig: str = ""

    def signed_bytes(self) -> bytes:
        return _CHECKPOINT_DOMAIN + msgspec.json.encode(msgspec.structs.replace(self, sig=""))

    def line(self) -> bytes:
        return msgspec.json.encode(self) + b"\n"


class Anchor(msgspec.Struct, kw_only=True, frozen=True):
    #: The last purged record and the chain head after it.
    seq: int
    head: str
    #: The first segment kept; its header's prev_hash must equal ``head``.
    next_segment: int
    #: Records older than this (unix seconds) were purged.
    purged_before: float
    time: float
    key_id: str
    sig: str = ""

    def signed_bytes(self) -> bytes:
        return _ANCHOR_DOMAIN + msgspec.json.encode(msgspec.structs.replace(self, sig=""))


def line_digest(line: bytes) -> str:
    """What the next checkpoint's ``prev`` names: sha256 of the line without its newline."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def sign_checkpoint(key: SigningKey, index: int, seq: int, head: bytes, segment: int,
                    time: float, prev: str) -> Checkpoint:
    unsigned = Checkpoint(index=index, seq=seq, head=head.hex(), segment=segment, time=time,
                          prev=prev, key_id=key.key_id)
    return msgspec.structs.replace(unsigned, sig=key.sign(unsigned.signed_bytes()).hex())


def sign_anchor(key: SigningKey, seq: int, head: bytes, next_segment: int,
                purged_before: float, time: float) -> Anchor:
    unsigned = Anchor(seq=seq, head=head.hex(), next_segment=next_segment,
                      purged_before=purged_before, time=time, key_id=key.key_id)
    return msgspec.structs.replace(unsigned, sig=key.sign(unsigned.signed_bytes()).hex())


def signature_ok(public: Ed25519PublicKey, signed: bytes, sig_hex: str) -> bool:
    try:
        public.verify(bytes.fromhex(sig_hex), signed)
    except (InvalidSignature, ValueError):
        return False
    return True


def read_checkpoint_lines(audit_dir: Path) -> list[bytes]:
    """Raw lines, the last one possibly torn (without its newline)."""
    path = audit_dir / CHECKPOINTS_FILE
    if not path.is_file():
        return []
    return path.read_bytes().splitlines(keepends=True)


def decode_checkpoint(line: bytes) -> Checkpoint:
    """Raises ``msgspec.DecodeError`` / ``msgspec.ValidationError`` on a damaged line."""
    return msgspec.json.decode(line, type=Checkpoint)


def read_anchor(audit_dir: Path) -> Anchor | None:
    path = audit_dir / ANCHOR_FILE
    if not path.is_file():
        return None
    return msgspec.json.decode(path.read_bytes(), type=Anchor)


def write_anchor(audit_dir: Path, anchor: Anchor) -> None:
    """Atomic and durable: the anchor must be on disk before any segment it covers goes."""
    path = audit_dir / ANCHOR_FILE
    tmp = path.with_name(f".{ANCHOR_FILE}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, msgspec.json.encode(anchor) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(audit_dir)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
