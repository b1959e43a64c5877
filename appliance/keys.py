"""API keys: creation, keyed-hash storage, lookup, revocation.

A key is ``sk-appl-`` followed by 32 random bytes in base64url. Only HMAC-SHA256 of the key
under a subkey derived from the box's master key is stored, so a copy of ``state.db`` alone
does not let anyone authenticate, and the hash is a direct index lookup (no per-key scan).
Every request checks its key again, so a revocation, an expiry or a disabled tenant,
department or app takes effect on the next request. The row is read again only when the
database may have changed: a looked-up key is kept in memory while SQLite's ``data_version``
(which moves when any other connection, such as the CLI's, commits) and this connection's own
``total_changes`` stay the same; any write at all, to any table, drops what was kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.errors import InvalidRequest, NotFound
from appliance.state import StateDB

KEY_PREFIX = "sk-appl-"
ROLES = ("admin", "operator", "auditor", "client")
#: last_used_at is written at most this often per key, to keep writes off the hot path.
LAST_USED_RESOLUTION_S = 60.0
#: Keys kept in memory between database changes, at most (then the cache starts over).
_MAX_CACHED = 4096
#: The longest the key cache is trusted on the WAL file's unchanged size and time alone.
_RECHECK_S = 0.1
_stat = os.stat

_SELECT = (
    "SELECT k.id, k.name, k.role, k.scopes, k.display, k.created_at, k.expires_at,"
    " k.revoked_at, k.last_used_at, k.app_id, a.department_id, d.tenant_id,"
    " coalesce(a.disabled_at, d.disabled_at, t.disabled_at)"
    " FROM api_keys k LEFT JOIN apps a ON a.id = k.app_id"
    " LEFT JOIN departments d ON d.id = a.department_id"
    " LEFT JOIN tenants t ON t.id = d.tenant_id"
)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key and where it sits: the principal of every request made with it."""

    id: str
    name: str
    role: str
    scopes: tuple[str, ...]
    display: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None
    app_id: str | None = None
    department_id: str | None = None
    tenant_id: str | None = None
    owner_disabled_at: float | None = None

    def allows_model(self, model: str) -> bool:
        return "*" in self.scopes or model in self.scopes

    def is_live(self, now: float) -> bool:
        return (self.revoked_at is None and self.owner_disabled_at is None
                and (self.expires_at is None or self.expires_at > now))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scopes"] = list(self.scopes)
        return data


def derive_hash_key(master_key: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"appliance api-key hash v1"
    ).derive(master_key)


def _from_row(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(row[0], row[1], row[2], tuple(row[3].split(",")), *row[4:])


def _check_scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    if not scopes or any(not s or "," in s for s in scopes):
        raise InvalidRequest("'scopes' must be a non-empty list of model names or '*'.",
                             param="scopes")
    return scopes


class KeyStore:
    def __init__(self, db: StateDB, master_key: bytes) -> None:
        self._db = db
        self._hash_key = derive_hash_key(master_key)
        #: Keyed once; a copy per lookup costs half what ``hmac.digest`` (keying again) does.
        self._hmac = hmac.new(self._hash_key, digestmod=hashlib.sha256)
        self._touched: dict[str, float] = {}
        #: Key rows by key hash, valid while the database is as it was at ``_seen``.
        self._cache: dict[bytes, ApiKey] = {}
        self._seen: tuple[int, int] = (-1, -1)
        #: The WAL file's (mtime, size, inode) at the last ``data_version`` check, and when.
        self._wal = f"{db.path}-wal"
        self._wal_seen: tuple[int, int, int] | None = None
        self._checked_at = 0.0

    def _hash(self, key: str) -> bytes:
        mac = self._hmac.copy()
        mac.update(key.encode("utf-8"))
        return mac.digest()

    def _unchanged(self) -> bool:
        """Whether nothing was committed since the cache was filled: by another connection
        (``data_version``) or by this one (``total_changes``). Otherwise the cache is
        dropped and the database state it is valid for noted.

        Every commit in WAL mode writes to the ``-wal`` file, so while its modification time,
        size and inode stay as they were at the last check nothing can have been committed,
        and one ``stat`` stands in for the ``data_version`` query, which takes SQLite's read
        locks (in the daemon under load the check went from 24 to 16 us). The file's time moves in
        clock ticks, so two commits within one tick that leave its size alone (after the WAL
        restarted) would look like one: the query is made at least every ``_RECHECK_S`` all
        the same, which bounds that case; otherwise a revocation counts from the next
        request. The stat comes first, so a commit between the two is seen next time."""
        now = time.monotonic()
        try:
            info = _stat(self._wal)
            wal: tuple[int, int, int] | None = (info.st_mtime_ns, info.st_size, info.st_ino)
        except OSError:
            wal = None
        if wal is not None and wal == self._wal_seen and now - self._checked_at < _RECHECK_S:
            return True
        self._wal_seen, self._checked_at = wal, now
        conn = self._db.conn
        seen = (conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)
        if seen == self._seen:
            return True
        self._cache.clear()
        self._seen = seen
        return False

    def create(self, name: str, role: str = "client", scopes: tuple[str, ...] = ("*",),
               expires_at: float | None = None, app_id: str | None = None
               ) -> tuple[str, ApiKey]:
        """Create a key; the plaintext is returned here and never again. Client keys belong to
        an app; the appliance's own roles (admin, operator, auditor) to none."""
        if role not in ROLES:
            raise InvalidRequest(f"'role' must be one of {', '.join(ROLES)}.", param="role")
        if (role == "client") != (app_id is not None):
            raise InvalidRequest("A client key needs an app; admin, operator and auditor keys "
                                 "belong to none.", param="app_id")
        if expires_at is not None and expires_at <= time.time():
            raise InvalidRequest("'expires_at' must be in the future.", param="expires_at")
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        plaintext = KEY_PREFIX + secret
        key_id = "key_" + secrets.token_hex(8)
        self._db.conn.execute(
            "INSERT INTO api_keys(id, name, key_hash, display, role, scopes, created_at,"
            " expires_at, app_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key_id, name, self._hash(plaintext), plaintext[: len(KEY_PREFIX) + 4] + "…", role,
             ",".join(_check_scopes(scopes)), time.time(), expires_at, app_id))
        return plaintext, self.get(key_id)

    def lookup(self, plaintext: str) -> ApiKey | None:
        """The live key for ``plaintext``; None when unknown, revoked, expired or disabled."""
        if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 128:
            return None
        key_hash = self._hash(plaintext)
        key = self._cache.get(key_hash) if self._unchanged() else None
        if key is None:
            row = self._db.conn.execute(_SELECT + " WHERE k.key_hash = ?",
                                        (key_hash,)).fetchone()
            if row is None:
                return None  # unknown keys are not kept: they would fill the cache
            key = _from_row(row)
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[key_hash] = key
        now = time.time()
        if not key.is_live(now):
            return None
        if now - self._touched.get(key.id, 0.0) >= LAST_USED_RESOLUTION_S:
            self._touched[key.id] = now
            conn = self._db.conn
            conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, key.id))
            # Only last_used_at changed, by us: what is cached stays valid (a commit by another
            # connection still shows in data_version, which is not moved on).
            self._seen = (self._seen[0], conn.total_changes)
        return key

    def get(self, key_id: str) -> ApiKey:
        row = self._db.conn.execute(_SELECT + " WHERE k.id = ?", (key_id,)).fetchone()
        if row is None:
            raise NotFound(f"No key '{key_id}'.", param="id")
        return _from_row(row)

    def list(self, app_id: str | None = None, include_revoked: bool = False) -> list[ApiKey]:
        where, args = [], []
        if app_id is not None:
            where.append("k.app_id = ?")
            args.append(app_id)
        if not include_revoked:
            where.append("k.revoked_at IS NULL")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._db.conn.execute(_SELECT + clause + " ORDER BY k.created_at", args)
        return [_from_row(r) for r in rows]

    def update(self, key_id: str, *, name: str | None = None,
               scopes: tuple[str, ...] | None = None, expires_at: float | None = None) -> ApiKey:
        key = self.get(key_id)
        self._db.conn.execute(
            "UPDATE api_keys SET name = ?, scopes = ?, expires_at = ? WHERE id = ?",
            (name or key.name, ",".join(_check_scopes(scopes or key.scopes)),
             expires_at if expires_at is not None else key.expires_at, key.id))
        return self.get(key.id)

    def revoke(self, key_id: str) -> ApiKey:
        key = self.get(key_id)
        self._db.conn.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (time.time(), key.id))
        return self.get(key.id)

    def has_role(self, role: str) -> bool:
        row = self._db.conn.execute(
            "SELECT 1 FROM api_keys WHERE role = ? AND revoked_at IS NULL LIMIT 1", (role,)
        ).fetchone()
        return row is not None
