"""Enrolling a box with central: its key pair, the one-time token, the trust root.

``appliance enroll URL TOKEN`` generates the box's Ed25519 key pair (the private key stays in
``secrets/``), sends the public key with the token to central's ``POST /v1/enroll``, together
with the public half of the audit log's signing key (so central can verify the box's audit
checkpoints; the heartbeat sends it too, for boxes enrolled before), checks the
TUF root metadata central returns (signed by its own root keys) and stores it as the box's
trust anchor. ``enrollment.json`` is written last: a box whose enrollment failed half-way is
not enrolled, and can enroll again. A box that was never enrolled runs standalone.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.audit.crypto import (SIGNING_KEY_NAME, AuditKeyError, SigningKey,
                                    load_signing_key)
from appliance.audit.writer import AuditLocked, lock_audit_dir
from appliance.datadir import DataDir
from sync.client import post_enrollment
from sync.paths import SyncPaths, write_atomic
from sync.signing import generate_key, load_private_key, public_key_b64, save_private_key
from sync.trust import save_trusted_root


class Enrollment(msgspec.Struct, kw_only=True, frozen=True):
    box_id: str
    central_url: str
    #: The name this box reported for itself.
    name: str
    #: Central's own name (from its config).
    central_name: str = ""
    enrolled_at: float


class EnrollmentError(Exception):
    """Enrollment cannot go on; the message says why."""


def load_enrollment(data_dir: Path) -> Enrollment | None:
    """The box's enrollment, or None when it was never enrolled."""
    path = SyncPaths(data_dir).enrollment_file
    try:
        return msgspec.json.decode(path.read_bytes(), type=Enrollment)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.MsgspecError) as exc:
        raise EnrollmentError(f"{path}: cannot read the enrollment: {exc}") from exc


def load_box_key(data_dir: Path) -> Ed25519PrivateKey:
    path = SyncPaths(data_dir).key_file
    try:
        return load_private_key(path)
    except (OSError, ValueError) as exc:
        raise EnrollmentError(f"{path}: cannot read the box's sync key: {exc}") from exc


def audit_public_key(data_dir: Path, create: bool) -> str | None:
    """The box's audit public key (raw Ed25519, base64), read as the audit log reads its
    signing key (a systemd credential, else ``secrets/device-signing.key``); None when there
    is none and not ``create``. ``create`` makes it as the audit writer would at its first
    start (it always creates a missing key), under the writer's lock on ``audit/``, so a
    daemon starting at the same moment cannot make another. If the lock is held, the running
    writer has loaded or made the key already. ``EnrollmentError`` for an unreadable key."""
    data = DataDir(data_dir)
    try:
        if data.read_secret(SIGNING_KEY_NAME) is not None:
            key = load_signing_key(data, create=False)
        elif create:
            key = _create_signing_key(data)
        else:
            return None
    except (AuditKeyError, OSError) as exc:
        raise EnrollmentError(f"cannot read the audit signing key: {exc}") from exc
    return base64.b64encode(key.public_bytes()).decode("ascii")


def _create_signing_key(data: DataDir) -> SigningKey:
    try:
        lock = lock_audit_dir(data.audit)
    except AuditLocked:  # the running daemon's writer holds it, and so has the key
        return load_signing_key(data, create=False)
    try:
        return load_signing_key(data, create=True)
    finally:
        os.close(lock)


def enroll(data_dir: Path, central_url: str, token: str, name: str,
           hardware: dict[str, Any], timeout: float) -> Enrollment:
    """Enroll with central (blocking). Raises ``EnrollmentError`` when the box is enrolled
    already, ``sync.client.CentralError`` when central refuses or cannot be reached."""
    paths = SyncPaths(data_dir)
    existing = load_enrollment(data_dir)
    if existing is not None:
        raise EnrollmentError(
            f"this box is already enrolled as {existing.box_id} with {existing.central_url}; "
            f"remove {paths.root} and {paths.key_file} to enroll it again")
    if not central_url.startswith(("http://", "https://")):
        raise EnrollmentError(f"the central URL must start with https:// (or http://), got "
                              f"{central_url!r}")
    audit_key = audit_public_key(data_dir, create=True)  # before the token is used up
    key = generate_key()
    answer = post_enrollment(central_url, {"token": token, "name": name,
                                           "public_key": public_key_b64(key),
                                           "audit_public_key": audit_key,
                                           "hardware": hardware}, timeout)
    box_id, root = answer.get("box_id"), answer.get("root")
    central = answer.get("central")
    if not isinstance(box_id, str) or not box_id or not isinstance(root, dict):
        raise EnrollmentError("central's enrollment answer has no box_id or root")
    paths.create()
    try:
        save_trusted_root(paths.metadata_dir, root)
    except ValueError as exc:
        raise EnrollmentError(f"central's trust root was refused: {exc}") from exc
    save_private_key(key, paths.key_file)
    enrollment = Enrollment(
        box_id=box_id, central_url=central_url.rstrip("/"), name=name,
        central_name=str(central.get("name", "")) if isinstance(central, dict) else "",
        enrolled_at=time.time())
    write_atomic(paths.enrollment_file, msgspec.json.encode(enrollment) + b"\n")
    return enrollment
