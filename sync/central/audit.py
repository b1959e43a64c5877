"""A box's audit key, and the checks central makes of the audit checkpoints the box pushes.

A box signs each line of its ``audit/checkpoints.jsonl`` with its audit key (Ed25519,
``appliance.audit.checkpoints``); each line names the digest of the line before it. Central
learns the public half at enrollment (``audit_public_key``), or from the first heartbeat that
carries it for a box enrolled before boxes sent it, and never replaces it: a box that presents
another key is refused (``audit_key_changed``) and marked in the fleet.

Every pushed line must be a checkpoint whose index follows the last one central holds and whose
``prev`` is that line's digest; with the key known, it must also name that key and carry a valid
signature. A batch with one bad line is refused whole (``checkpoint_invalid``, naming the index
and the reason) and the failure is recorded for the fleet view (``audit_status``).

Checkpoints received before the key was known are stored after the checks that need no key,
and all of them are verified, in order, when the key arrives; a failure then is recorded (the
lines stay: they are evidence). A recorded failure stays until the box is enrolled again: what
made it happen (a rewritten log, a stolen box key, a replaced audit key) needs a person.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance.audit.checkpoints import Checkpoint, line_digest, signature_ok
from appliance.audit.crypto import public_key_id
from sync.central.errors import Conflict, InvalidRequest
from sync.central.state import CentralDB
from sync.signing import public_key_from_b64


class CheckpointInvalid(Exception):
    """A checkpoint line fails a check; the message names its index and why."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"checkpoint index {index}: {reason}")
        self.index = index
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AuditKey:
    """A box's registered audit public key and its id (as checkpoints name it)."""

    public: Ed25519PublicKey
    raw: bytes
    key_id: str

    @property
    def b64(self) -> str:
        return base64.b64encode(self.raw).decode("ascii")

    @classmethod
    def parse(cls, value: str) -> AuditKey:
        """``InvalidRequest`` unless ``value`` is a raw Ed25519 public key, base64."""
        try:
            public = public_key_from_b64(value)
        except ValueError as exc:
            raise InvalidRequest(f"`audit_public_key`: {exc}") from exc
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(public, raw, public_key_id(public))


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    index: int
    line: str


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """A pushed line with the fields central indexes by."""

    index: int
    seq: int
    head: str
    line: str


class _Fields(msgspec.Struct):
    index: int
    seq: int
    head: str


def parse_lines(lines: Iterable[str]) -> list[ParsedLine]:
    """``InvalidRequest`` (400) for a line without integer ``index``, ``seq`` and a string
    ``head``: not even a damaged checkpoint."""
    parsed = []
    for number, line in enumerate(lines):
        try:
            fields = msgspec.json.decode(line, type=_Fields)
        except msgspec.MsgspecError as exc:
            raise InvalidRequest(f"`checkpoints[{number}].line`: not a checkpoint line with "
                                 f"integer `index` and `seq` and a string `head` ({exc})"
                                 ) from exc
        parsed.append(ParsedLine(fields.index, fields.seq, fields.head, line))
    return parsed


def check_line(line: ParsedLine, last: StoredCheckpoint | None, key: AuditKey | None) -> None:
    """Check one new line (its index past ``last``, the last checkpoint held before it)."""
    try:
        checkpoint = msgspec.json.decode(line.line, type=Checkpoint)
    except msgspec.MsgspecError as exc:
        raise CheckpointInvalid(line.index, f"not a valid checkpoint line ({exc})") from exc
    if last is None:
        # Nothing held before it: only the very first checkpoint of a log can be checked.
        if checkpoint.index == 1 and checkpoint.prev:
            raise CheckpointInvalid(line.index, "the first checkpoint names a predecessor")
    elif checkpoint.index != last.index + 1:
        raise CheckpointInvalid(line.index, f"does not follow checkpoint index {last.index} "
                                            "(a checkpoint is missing)")
    elif checkpoint.prev != line_digest(last.line.encode("utf-8")):
        raise CheckpointInvalid(line.index, f"does not link to checkpoint index {last.index} "
                                            "(`prev` is not its digest: a checkpoint was "
                                            "removed, reordered or replaced)")
    if key is None:
        return
    if checkpoint.key_id != key.key_id:
        raise CheckpointInvalid(line.index, f"signed by key {checkpoint.key_id}, not the "
                                            f"box's audit key {key.key_id}")
    if not signature_ok(key.public, checkpoint.signed_bytes(), checkpoint.sig):
        raise CheckpointInvalid(line.index, "bad signature (the line was altered, or not "
                                            "signed by the box's audit key)")


def new_lines(conn: sqlite3.Connection, box_id: str, lines: list[ParsedLine],
              key: AuditKey | None) -> list[ParsedLine]:
    """The lines of a batch central does not hold yet, each checked against the one before
    it; ``CheckpointInvalid`` at the first that fails. A line central holds already, byte for
    byte, is skipped; another line under an index central holds is a rewritten log."""
    last = last_checkpoint(conn, box_id)
    accepted: list[ParsedLine] = []
    for line in lines:
        if last is not None and line.index <= last.index:
            held = next((a.line for a in accepted if a.index == line.index), None)
            if held is None:
                held = stored_line(conn, box_id, line.index)
            if held is None:
                raise CheckpointInvalid(line.index, "comes before the first checkpoint "
                                                    "central holds for this box")
            if held != line.line:
                raise CheckpointInvalid(line.index, "differs from the checkpoint central "
                                                    "already holds under this index (the "
                                                    "box's log was rewritten)")
            continue
        check_line(line, last, key)
        accepted.append(line)
        last = StoredCheckpoint(line.index, line.line)
    return accepted


def verify_stored(conn: sqlite3.Connection, box_id: str, key: AuditKey) -> str | None:
    """Verify every checkpoint held for ``box_id`` with ``key``, in order (those received
    before the key was known); the first failure, or None."""
    last: StoredCheckpoint | None = None
    rows = conn.execute("SELECT idx, seq, head, line FROM checkpoints WHERE box_id = ? "
                        "ORDER BY idx", (box_id,))
    for index, seq, head, line in rows:
        try:
            check_line(ParsedLine(index, seq, head, line), last, key)
        except CheckpointInvalid as exc:
            return f"{exc} (received before the audit key was registered)"
        last = StoredCheckpoint(index, line)
    return None


def last_checkpoint(conn: sqlite3.Connection, box_id: str) -> StoredCheckpoint | None:
    row = conn.execute("SELECT idx, line FROM checkpoints WHERE box_id = ? "
                       "ORDER BY idx DESC LIMIT 1", (box_id,)).fetchone()
    return None if row is None else StoredCheckpoint(row[0], row[1])


def stored_line(conn: sqlite3.Connection, box_id: str, index: int) -> str | None:
    row = conn.execute("SELECT line FROM checkpoints WHERE box_id = ? AND idx = ?",
                       (box_id, index)).fetchone()
    return None if row is None else str(row[0])


def registered_key(conn: sqlite3.Connection, box_id: str) -> AuditKey | None:
    row = conn.execute("SELECT audit_public_key FROM boxes WHERE id = ?", (box_id,)).fetchone()
    if row is None or row[0] is None:
        return None
    return AuditKey.parse(row[0])


def record_problem(conn: sqlite3.Connection, box_id: str, problem: str, now: float) -> None:
    """Mark the box's audit ``invalid`` in the fleet view (outside any refused transaction)."""
    conn.execute("UPDATE boxes SET audit_problem = ?, audit_problem_at = ? WHERE id = ?",
                 (problem, now, box_id))


def offer_key(db: CentralDB, box_id: str, offered: AuditKey, now: float) -> None:
    """A heartbeat's ``audit_public_key``: registered (and what was stored verified) when the
    box has none; nothing when it is the registered one; ``Conflict`` (``audit_key_changed``)
    when it is another, recorded for the fleet view."""
    held = registered_key(db.conn, box_id)
    if held is not None and held.raw == offered.raw:
        return  # every heartbeat of a box that has its key: no write lock taken
    try:
        with db.transaction() as conn:  # read again under the write lock
            held = registered_key(conn, box_id)
            if held is not None:
                if held.raw != offered.raw:
                    raise _KeyChanged(held, offered)
                return
            conn.execute("UPDATE boxes SET audit_public_key = ? WHERE id = ?",
                         (offered.b64, box_id))
            problem = verify_stored(conn, box_id, offered)
            if problem is not None:
                record_problem(conn, box_id, problem, now)
    except _KeyChanged as exc:
        record_problem(db.conn, box_id, str(exc), now)
        raise Conflict(str(exc), code="audit_key_changed") from exc


class _KeyChanged(Exception):
    def __init__(self, held: AuditKey, offered: AuditKey) -> None:
        super().__init__(f"the box presented audit key {offered.key_id}, not its registered "
                         f"key {held.key_id}; enroll it again if its audit key was replaced")


def audit_status(audit_public_key: str | None, problem: str | None) -> str:
    """``verified``, ``unverified`` (no key yet) or ``invalid: <the recorded failure>``."""
    if problem:
        return f"invalid: {problem}"
    return "unverified" if audit_public_key is None else "verified"


def key_id_of(audit_public_key: str | None) -> str | None:
    return None if audit_public_key is None else AuditKey.parse(audit_public_key).key_id
