"""The segment file format: a fixed header, then length-prefixed, checksummed frames.

Segments live in ``audit/`` as ``segment-<index:08d>.aud`` and are only ever appended to.
All integers are big-endian::

    header (256 bytes)
      0   8  magic  b"APAUDSG1"
      8  16  segment id (random; part of every record's AEAD associated data)
     24   8  index       (1, 2, 3, ...; consecutive across the log)
     32   8  first_seq   (sequence number of the segment's first record; global, from 1)
     40  32  prev_hash   (chain head after the previous segment's last record, or the anchor's)
     72   8  created     (unix nanoseconds)
     80   4  crc32 of bytes 0..80             -- the immutable part
     84   8  master key id  } the key slot: the only bytes ever rewritten, by a master-key
     92  40  wrapped data key (AES-KW)        } rotation, in one 52-byte write inside the first
    132   4  crc32 of bytes 84..132           } sector, so records are never rewritten
    136 120  zero

    frame (repeated to the end of the file)
      4  body length n
      n  body = seq (8) | nonce (12) | AES-256-GCM ciphertext and tag of the MessagePack record
      4  crc32 of (length | body)

The segment being written is extended with zeros ahead of its records (see
``writer.PREALLOCATE_BYTES``) and cut back when closed, so a segment may end in a run of zeros:
that is its end, not damage. A torn tail (a crash mid-write) shows as a last frame that runs
past the end of the file, or a last frame whose crc32 fails or whose length is impossible,
with nothing but zeros after it; the writer truncates it at start. A bad frame followed by more
data is not a crash but damage, and is reported, never silently cut.

The hash chain runs over what is stored, so it can be checked without decrypting::

    start(segment) = SHA-256(b"APAUDSG1 start" | header[0:80])   -- binds prev_hash, index, ...
    link(h, body)  = SHA-256(h | body)

and the head after record ``seq`` is the ``link`` value over it (for a segment's first record,
starting from ``start(segment)``). Checkpoints sign (seq, head).
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.audit.crypto import KEY_ID_BYTES, WRAPPED_KEY_BYTES

MAGIC = b"APAUDSG1"
HEADER_SIZE = 256
KEY_SLOT_OFFSET = 84
KEY_SLOT_SIZE = KEY_ID_BYTES + WRAPPED_KEY_BYTES + 4
MAX_BODY = 16 * 1024 * 1024
MIN_BODY = 8 + 12 + 16
ZERO_HASH = bytes(32)
_IMMUTABLE = struct.Struct(">8s16sQQ32sQ")
_FRAME_HEAD = struct.Struct(">I")
_SEQ = struct.Struct(">Q")
_NAME = re.compile(r"^segment-(\d{8})\.aud$")


def segment_path(audit_dir: Path, index: int) -> Path:
    return audit_dir / f"segment-{index:08d}.aud"


def list_segments(audit_dir: Path) -> list[tuple[int, Path]]:
    """(index, path) of every segment file, by index."""
    found = []
    if audit_dir.is_dir():
        for path in audit_dir.iterdir():
            match = _NAME.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return sorted(found)


class FormatError(Exception):
    """A header that cannot be parsed; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    segment_id: bytes
    index: int
    first_seq: int
    prev_hash: bytes
    created_ns: int
    master_key_id: bytes
    wrapped_key: bytes

    def immutable_bytes(self) -> bytes:
        return _IMMUTABLE.pack(MAGIC, self.segment_id, self.index, self.first_seq,
                               self.prev_hash, self.created_ns)

    def key_slot(self) -> bytes:
        slot = self.master_key_id + self.wrapped_key
        return slot + struct.pack(">I", zlib.crc32(slot))

    def encode(self) -> bytes:
        fixed = self.immutable_bytes()
        data = fixed + struct.pack(">I", zlib.crc32(fixed)) + self.key_slot()
        return data + bytes(HEADER_SIZE - len(data))

    def chain_start(self) -> bytes:
        return hashlib.sha256(b"APAUDSG1 start" + self.immutable_bytes()).digest()

    @classmethod
    def decode(cls, data: bytes) -> SegmentHeader:
        if len(data) < HEADER_SIZE:
            raise FormatError("header is incomplete")
        magic, segment_id, index, first_seq, prev_hash, created = _IMMUTABLE.unpack_from(data)
        if magic != MAGIC:
            raise FormatError("not an audit segment (bad magic)")
        (crc,) = struct.unpack_from(">I", data, 80)
        if crc != zlib.crc32(data[:80]):
            raise FormatError("header checksum mismatch")
        slot = data[KEY_SLOT_OFFSET:KEY_SLOT_OFFSET + KEY_ID_BYTES + WRAPPED_KEY_BYTES]
        (slot_crc,) = struct.unpack_from(">I", data, KEY_SLOT_OFFSET + len(slot))
        if slot_crc != zlib.crc32(slot):
            raise FormatError("key slot checksum mismatch")
        return cls(segment_id, index, first_seq, prev_hash, created, slot[:KEY_ID_BYTES],
                   slot[KEY_ID_BYTES:])


def encode_frame(body: bytes) -> bytes:
    head = _FRAME_HEAD.pack(len(body))
    return head + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(head)))


def frame_body(seq: int, sealed: bytes) -> bytes:
    return _SEQ.pack(seq) + sealed


def body_seq(body: bytes) -> int:
    seq: int = _SEQ.unpack_from(body)[0]
    return seq


def link(head: bytes, body: bytes) -> bytes:
    return hashlib.sha256(head + body).digest()


@dataclass(frozen=True, slots=True)
class Frame:
    offset: int
    seq: int
    body: bytes

    @property
    def sealed(self) -> bytes:
        return self.body[8:]


@dataclass(frozen=True, slots=True)
class Tail:
    """How a scan ended: ``clean`` at end of file, ``torn`` (a crash's leftovers from
    ``offset`` on), or ``corrupt`` (a bad frame at ``offset`` with data after it)."""

    kind: Literal["clean", "torn", "corrupt"]
    offset: int
    reason: str = ""


def scan(data: bytes, tail: list[Tail]) -> Iterator[Frame]:
    """The frames of a whole segment file's bytes; appends how it ended to ``tail``."""
    end = len(data)
    offset = HEADER_SIZE
    while offset < end:
        problem = ""
        stop = end
        if end - offset < 4:
            problem = "incomplete length prefix"
        else:
            (length,) = _FRAME_HEAD.unpack_from(data, offset)
            if length == 0 and data.count(0, offset) == end - offset:
                break  # the zeros ahead of the records: the end
            stop = offset + 4 + length + 4
            if length < MIN_BODY or length > MAX_BODY:
                problem = f"impossible frame length {length}"
                stop = offset + 4
            elif stop > end:
                problem = "frame runs past the end of the file"
            else:
                (crc,) = struct.unpack_from(">I", data, stop - 4)
                if crc != zlib.crc32(data[offset:stop - 4]):
                    problem = "frame checksum mismatch"
        if problem:
            # torn: nothing but zeros after the bad frame (a crash mid-write); else damage
            torn = stop >= end or data.count(0, stop) == end - stop
            tail.append(Tail("torn" if torn else "corrupt", offset, problem))
            return
        body = data[offset + 4:stop - 4]
        yield Frame(offset, body_seq(body), body)
        offset = stop
    tail.append(Tail("clean", offset))
