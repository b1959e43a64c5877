"""One-time enrollment tokens and the boxes they create.

A token is ``apt_enr_`` + 32 random bytes (urlsafe base64). Only its sha256 is stored, so the
database never holds a usable token; it binds the box name central IT chose, expires, and is
consumed in the same transaction that creates the box, so it works once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sync.central.audit import AuditKey
from sync.central.errors import InvalidRequest, NotFound, Unauthorized
from sync.central.state import CentralDB
from sync.signing import public_key_from_b64

TOKEN_PREFIX = "apt_enr_"


@dataclass(frozen=True)
class EnrollmentToken:
    token: str
    name: str
    expires_at: float


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(db: CentralDB, name: str, ttl_hours: float,
                 now: float | None = None) -> EnrollmentToken:
    if not name.strip():
        raise ValueError("--name must not be empty")
    if ttl_hours <= 0:
        raise ValueError("--ttl-hours must be positive")
    now = time.time() if now is None else now
    raw = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
    token = TOKEN_PREFIX + raw
    expires_at = now + ttl_hours * 3600
    db.conn.execute("INSERT INTO enrollment_tokens(token_hash, name, created_at, expires_at) "
                    "VALUES (?,?,?,?)", (_hash(token), name.strip(), now, expires_at))
    return EnrollmentToken(token, name.strip(), expires_at)


def enroll(db: CentralDB, token: str, reported_name: str, public_key: str,
           hardware: dict[str, Any] | None, now: float,
           audit_public_key: str | None = None) -> tuple[str, str]:
    """Consume ``token`` and create the box, with its audit key when it sent one; returns
    ``(box_id, name)``. ``Unauthorized`` with ``enrollment_token_invalid|used|expired``;
    ``InvalidRequest`` for a bad public key."""
    try:
        public_key_from_b64(public_key)
    except ValueError as exc:
        raise InvalidRequest(f"`public_key`: {exc}") from exc
    audit_key = None if audit_public_key is None else AuditKey.parse(audit_public_key).b64
    with db.transaction() as conn:
        row = conn.execute("SELECT name, expires_at, used_at FROM enrollment_tokens "
                           "WHERE token_hash = ?", (_hash(token),)).fetchone()
        if row is None:
            raise Unauthorized("unknown enrollment token", code="enrollment_token_invalid")
        name, expires_at, used_at = row
        if used_at is not None:
            raise Unauthorized("this enrollment token was already used; create a new one "
                               "with `appliance central enroll-token create`",
                               code="enrollment_token_used")
        if now >= expires_at:
            raise Unauthorized("this enrollment token has expired; create a new one",
                               code="enrollment_token_expired")
        box_id = "box_" + secrets.token_hex(12)
        conn.execute("UPDATE enrollment_tokens SET used_at = ?, box_id = ? WHERE token_hash = ?",
                     (now, box_id, _hash(token)))
        conn.execute("INSERT INTO boxes(id, name, reported_name, public_key, enrolled_at, "
                     "last_contact, hardware, audit_public_key) VALUES (?,?,?,?,?,?,?,?)",
                     (box_id, name, reported_name or None, public_key, now, now,
                      json.dumps(hardware) if hardware is not None else None, audit_key))
    return box_id, name


def revoke_box(db: CentralDB, box_id: str, now: float | None = None) -> None:
    """Refuse every later request of ``box_id`` (``unknown_box``); its data stays."""
    cur = db.conn.execute("UPDATE boxes SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                          (time.time() if now is None else now, box_id))
    if cur.rowcount == 0:
        exists = db.conn.execute("SELECT 1 FROM boxes WHERE id = ?", (box_id,)).fetchone()
        if exists is None:
            raise NotFound(f"no box `{box_id}`")
