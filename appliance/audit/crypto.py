"""Keys of the audit log: the audit master key, per-segment data keys, the signing key.

Key hierarchy::

    audit-master.key (secrets/ 0600, or systemd credential)  -- 32 random bytes
      |- HKDF-SHA256("appliance audit kek v1")     -> KEK: AES-KW wraps each segment's data key
      |- HKDF-SHA256("appliance audit content v1") -> HMAC key of ``hashed`` content
      '- HKDF-SHA256("appliance audit key id v1")  -> 8-byte id written beside each wrapped key
    segment data key (32 random bytes, one per segment) -> AES-256-GCM of every record
    device-signing.key (Ed25519, secrets/ 0600)      -> signs checkpoints and anchors

The audit master key is its own secret rather than the box's ``master.key`` because API-key
hashes are derived from ``master.key``: rotating it would revoke every API key, while rotating
the audit master key only re-wraps the data keys (see ``rotate.py``).

Record nonces are random (96 bits) rather than the sequence number: after a crash the writer
may write a new record under a sequence number whose torn predecessor reached the disk, and a
repeated (key, nonce) pair would leak both plaintexts.
"""

from __future__ import annotations

import hashlib
import os
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from appliance.datadir import DataDir

MASTER_KEY_NAME = "audit-master.key"
#: Written during a rotation and removed when it completes; its presence means "resume".
NEXT_MASTER_KEY_NAME = "audit-master.key.next"
SIGNING_KEY_NAME = "device-signing.key"
KEY_BYTES = 32
NONCE_BYTES = 12
WRAPPED_KEY_BYTES = 40
KEY_ID_BYTES = 8


class AuditKeyError(Exception):
    """A key is missing, malformed, or does not match what the log was written with."""


def _derive(master: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(master)


class MasterKey:
    """The audit master key and what is derived from it."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_BYTES:
            raise AuditKeyError(f"the audit master key must be exactly {KEY_BYTES} bytes")
        self._kek = _derive(raw, b"appliance audit kek v1")
        self.content_hash_key = _derive(raw, b"appliance audit content v1")
        self.key_id = _derive(raw, b"appliance audit key id v1")[:KEY_ID_BYTES]
        self.raw = raw

    def wrap(self, data_key: bytes) -> bytes:
        return aes_key_wrap(self._kek, data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        return aes_key_unwrap(self._kek, wrapped)


def load_master_keys(data_dir: DataDir, create: bool) -> list[MasterKey]:
    """The current audit master key, then the pending one of an unfinished rotation (if any):
    a reader picks the one whose id a segment names, so an interrupted rotation loses nothing."""
    raw = data_dir.read_secret(MASTER_KEY_NAME)
    if raw is None:
        if not create:
            raise AuditKeyError(f"no {MASTER_KEY_NAME} in {data_dir.secrets} or credentials")
        data_dir.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
        raw = os.urandom(KEY_BYTES)
        data_dir.write_secret(MASTER_KEY_NAME, raw)
    keys = [MasterKey(raw)]
    pending = data_dir.read_secret(NEXT_MASTER_KEY_NAME)
    if pending is not None:
        keys.append(MasterKey(pending))
    return keys


def find_master(keys: list[MasterKey], key_id: bytes) -> MasterKey:
    for key in keys:
        if key.key_id == key_id:
            return key
    raise AuditKeyError(f"no audit master key with id {key_id.hex()} (was it rotated away?)")


def new_data_key() -> bytes:
    return os.urandom(KEY_BYTES)


def record_aad(segment_id: bytes, seq: int) -> bytes:
    """Binds a ciphertext to its place: moved to another segment or position, it fails."""
    return segment_id + struct.pack(">Q", seq)


class RecordCipher:
    """AES-256-GCM of one segment's records."""

    def __init__(self, data_key: bytes, segment_id: bytes) -> None:
        self._aead = AESGCM(data_key)
        self._segment_id = segment_id

    def seal(self, seq: int, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, record_aad(self._segment_id, seq))

    def open(self, seq: int, sealed: bytes) -> bytes:
        """Raises ``cryptography.exceptions.InvalidTag`` when anything was altered."""
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        return self._aead.decrypt(nonce, ciphertext, record_aad(self._segment_id, seq))


class SigningKey:
    """The device's Ed25519 key; its id (first 8 bytes of sha256 of the public key, hex) is
    written into every checkpoint so a verifier knows which key to hold it against."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = public_key_id(self.public)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def public_bytes(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_signing_key(data_dir: DataDir, create: bool) -> SigningKey:
    raw = data_dir.read_secret(SIGNING_KEY_NAME)
    if raw is None:
        if not create:
            raise AuditKeyError(f"no {SIGNING_KEY_NAME} in {data_dir.secrets} or credentials")
        data_dir.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = Ed25519PrivateKey.generate()
        raw = private.private_bytes(serialization.Encoding.Raw,
                                    serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
        data_dir.write_secret(SIGNING_KEY_NAME, raw)
    if len(raw) != 32:
        raise AuditKeyError(f"{SIGNING_KEY_NAME} must hold a raw 32-byte Ed25519 private key")
    return SigningKey(Ed25519PrivateKey.from_private_bytes(raw))
