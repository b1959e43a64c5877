"""Signed requests between a box and central (``appliance-sync-v1``, see ``sync/PROTOCOL.md``).

After enrollment every call a box makes is signed with its Ed25519 key over the method, the
path with its query, a timestamp, a nonce and the sha256 of the body. The box uses
``sign_headers`` (or ``BoxAuth`` with an ``httpx.Client``); central uses ``verify_headers``
and keeps the nonces itself. Both sides import this one module so they cannot disagree on the
bytes that are signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from collections.abc import Generator, Mapping
from pathlib import Path

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.datadir import write_atomic

__all__ = [
    "BOX_HEADER", "NONCE_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WINDOW_SECONDS",
    "BoxAuth", "SignatureError", "generate_key", "load_private_key", "public_key_b64",
    "public_key_from_b64", "save_private_key", "sign_headers", "signed_bytes", "verify_headers",
    "wire_path",
]

BOX_HEADER = "x-appliance-box"
TIMESTAMP_HEADER = "x-appliance-timestamp"
NONCE_HEADER = "x-appliance-nonce"
SIGNATURE_HEADER = "x-appliance-signature"
#: A request whose timestamp is further than this from the verifier's clock is stale.
WINDOW_SECONDS = 300.0
_DOMAIN = b"appliance-sync-v1\n"
_NONCE_CHARS = frozenset("0123456789abcdef")


class SignatureError(Exception):
    """A signed request cannot be accepted; ``code`` is what central answers (401)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def signed_bytes(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The exact bytes the signature covers."""
    return b"\n".join((
        _DOMAIN.rstrip(b"\n"), method.upper().encode("ascii"), path.encode("utf-8"),
        timestamp.encode("ascii"), nonce.encode("ascii"),
        hashlib.sha256(body).hexdigest().encode("ascii"),
    ))


def sign_headers(private_key: Ed25519PrivateKey, box_id: str, method: str, path: str,
                 body: bytes, now: float | None = None) -> dict[str, str]:
    """The four ``x-appliance-*`` headers for one request. ``path`` is the path as sent on the
    wire plus ``?query`` when there is one."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(16)
    signature = private_key.sign(signed_bytes(method, path, timestamp, nonce, body))
    return {
        BOX_HEADER: box_id,
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        # Starlette's Headers are case-insensitive; a plain dict may carry other cases.
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    if not value:
        raise SignatureError("signature_missing", f"the request is not signed: no `{name}`")
    return value


def verify_headers(public_key: Ed25519PublicKey, method: str, path: str,
                   headers: Mapping[str, str], body: bytes, now: float,
                   window: float = WINDOW_SECONDS) -> None:
    """Check the signature and the timestamp window; raise ``SignatureError`` otherwise.

    The nonce is only checked for form here: remembering nonces is the verifier's job (central
    keeps them in its database for ``2 * window``).
    """
    timestamp = _header(headers, TIMESTAMP_HEADER)
    nonce = _header(headers, NONCE_HEADER)
    signature_b64 = _header(headers, SIGNATURE_HEADER)
    if not timestamp.isascii() or not timestamp.isdigit():
        raise SignatureError("signature_missing",
                             f"`{TIMESTAMP_HEADER}` must be integer unix seconds")
    if len(nonce) != 32 or not set(nonce) <= _NONCE_CHARS:
        raise SignatureError("signature_missing", f"`{NONCE_HEADER}` must be 32 hex characters")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("signature_missing",
                             f"`{SIGNATURE_HEADER}` is not base64") from exc
    try:
        public_key.verify(signature, signed_bytes(method, path, timestamp, nonce, body))
    except InvalidSignature as exc:
        raise SignatureError("signature_invalid",
                             "the request signature does not verify with the box's key") from exc
    if abs(now - int(timestamp)) > window:
        raise SignatureError(
            "stale_request", f"the request was signed at {timestamp}, more than "
            f"{window:.0f} s from central's clock ({now:.0f}); check the box's clock")


def wire_path(url: httpx.URL) -> str:
    """The path and query as httpx sends them (what both sides sign)."""
    return url.raw_path.decode("ascii")


class BoxAuth(httpx.Auth):
    """Signs every request of an ``httpx.Client``: ``httpx.Client(base_url=..., auth=BoxAuth(
    box_id, key))``. Works with ``httpx.AsyncClient`` too."""

    requires_request_body = True

    def __init__(self, box_id: str, private_key: Ed25519PrivateKey) -> None:
        self.box_id = box_id
        self.private_key = private_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(sign_headers(self.private_key, self.box_id, request.method,
                                            wire_path(request.url), request.content))
        yield request


# --- keys ------------------------------------------------------------------------------------


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def save_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write ``key`` as PEM (PKCS#8, unencrypted) with mode 0600, atomically: the file never
    exists with looser permissions and a crash leaves the old file or the new one."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(path, pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a key written by ``save_private_key``; ``ValueError`` if it is not Ed25519."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Standard base64 of the raw 32-byte public key (the enrollment body's ``public_key``)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def public_key_from_b64(value: str) -> Ed25519PublicKey:
    """``ValueError`` unless ``value`` is base64 of exactly 32 bytes."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)
