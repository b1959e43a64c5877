"""Who is calling: a box (signed request, ``sync/PROTOCOL.md`` section 2) or central IT's
admin (bearer token).

``verify_headers`` checks the signature and the timestamp window; the nonce store and the
box's key live here, in central's database. A nonce is inserted only after its signature
verified, so nobody without the box's key can use up its nonces.
"""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Mapping

from sync.central.errors import Unauthorized
from sync.central.state import CentralDB
from sync.signing import (BOX_HEADER, NONCE_HEADER, SignatureError, public_key_from_b64,
                          verify_headers)

#: How often (seconds) old nonces are deleted; each is kept for twice the window.
_PRUNE_EVERY = 60.0


class BoxAuthenticator:
    def __init__(self, db: CentralDB, window: float) -> None:
        self.db = db
        self.window = window
        self._pruned_at = 0.0

    def authenticate(self, method: str, path: str, headers: Mapping[str, str], body: bytes,
                     now: float) -> str:
        """The calling box's id; ``Unauthorized`` with the protocol's code otherwise."""
        box_id = headers.get(BOX_HEADER)
        if not box_id:
            raise Unauthorized(f"the request is not signed: no `{BOX_HEADER}`",
                               code="signature_missing")
        row = self.db.conn.execute("SELECT public_key FROM boxes WHERE id = ? AND "
                                   "revoked_at IS NULL", (box_id,)).fetchone()
        if row is None:
            raise Unauthorized(f"unknown or revoked box `{box_id}`; enroll it again",
                               code="unknown_box")
        try:
            verify_headers(public_key_from_b64(row[0]), method, path, headers, body, now,
                           window=self.window)
        except SignatureError as exc:
            raise Unauthorized(exc.message, code=exc.code) from exc
        if now - self._pruned_at > _PRUNE_EVERY:
            self.db.conn.execute("DELETE FROM nonces WHERE seen_at < ?", (now - 2 * self.window,))
            self._pruned_at = now
        try:
            self.db.conn.execute("INSERT INTO nonces(box_id, nonce, seen_at) VALUES (?,?,?)",
                                 (box_id, headers[NONCE_HEADER], now))
        except sqlite3.IntegrityError as exc:
            raise Unauthorized("this request's nonce was already used: a replayed request",
                               code="replayed_nonce") from exc
        self.db.conn.execute("UPDATE boxes SET last_contact = ? WHERE id = ?", (now, box_id))
        return box_id


def check_admin(authorization: str | None, token: str) -> None:
    """``Authorization: Bearer <token>`` with central's admin token, in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        raise Unauthorized("missing or wrong admin token (see <data-dir>/secrets/admin.token)",
                           code="invalid_admin_token")
