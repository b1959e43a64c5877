"""API keys: creation, keyed-hash storage and lookup.

A key is ``sk-appl-`` followed by 32 random bytes in base64url. Only HMAC-SHA256 of the key
under a subkey derived from the box's master key is stored, so a copy of ``state.db`` alone
does not let anyone authenticate, and the hash is a direct index lookup (no per-key scan).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.state import StateDB

KEY_PREFIX = "sk-appl-"
ROLES = ("admin", "operator", "auditor", "client")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    role: str
    scopes: tuple[str, ...]
    display: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    def allows_model(self, model: str) -> bool:
        return "*" in self.scopes or model in self.scopes


def derive_hash_key(master_key: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"appliance api-key hash v1"
    ).derive(master_key)


class KeyStore:
    def __init__(self, db: StateDB, master_key: bytes) -> None:
        self._db = db
        self._hash_key = derive_hash_key(master_key)

    def _hash(self, key: str) -> bytes:
        return hmac.new(self._hash_key, key.encode("utf-8"), hashlib.sha256).digest()

    def create(
        self,
        name: str,
        role: str = "client",
        scopes: tuple[str, ...] = ("*",),
        expires_at: float | None = None,
    ) -> tuple[str, ApiKey]:
        """Create a key; the plaintext is returned here and never again."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        plaintext = KEY_PREFIX + secret
        key = ApiKey(
            id="key_" + secrets.token_hex(8),
            name=name,
            role=role,
            scopes=scopes,
            display=plaintext[: len(KEY_PREFIX) + 4] + "…",
            created_at=time.time(),
            expires_at=expires_at,
            revoked_at=None,
        )
        self._db.conn.execute(
            "INSERT INTO api_keys(id, name, key_hash, display, role, scopes, created_at,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key.id,
                key.name,
                self._hash(plaintext),
                key.display,
                key.role,
                ",".join(scopes),
                key.created_at,
                expires_at,
            ),
        )
        return plaintext, key

    def lookup(self, plaintext: str) -> ApiKey | None:
        """The live key for ``plaintext``; None when unknown, revoked or expired."""
        if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 128:
            return None
        row = self._db.conn.execute(
            "SELECT id, name, role, scopes, display, created_at, expires_at, revoked_at"
            " FROM api_keys WHERE key_hash = ?",
            (self._hash(plaintext),),
        ).fetchone()
        if row is None:
            return None
        key = ApiKey(row[0], row[1], row[2], tuple(row[3].split(",")), row[4], row[5], row[6],
                     row[7])
        now = time.time()
        if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
            return None
        return key

    def has_role(self, role: str) -> bool:
        row = self._db.conn.execute(
            "SELECT 1 FROM api_keys WHERE role = ? AND revoked_at IS NULL LIMIT 1", (role,)
        ).fetchone()
        return row is not None
