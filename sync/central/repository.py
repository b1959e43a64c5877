"""Central's TUF repository: the signed metadata and the policy target boxes download.

Built on python-tuf's Metadata API (roles root, targets, snapshot, timestamp; Ed25519 keys;
consistent snapshots). On disk, under ``<data_dir>/repository/``::

    metadata/{N}.root.json       every root version (boxes walk them to follow rotations)
    metadata/{N}.targets.json    targets version N (lists ``policy.toml``)
    metadata/{N}.snapshot.json   snapshot version N (pins the targets version)
    metadata/timestamp.json      the current timestamp (pins the snapshot version)
    targets/{sha256}.policy.toml every published policy, named by its hash

Every file is written atomically and in dependency order (targets, snapshot, then timestamp),
so the HTTP server reads them without locks and a box never sees a half-published state.
Writers (the server's refresh task, ``policy publish``, ``keys rotate``) serialise on an
``flock`` of ``repository/.lock``. Private keys are ``secrets/tuf/<keyid>.pem`` (0600).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer._crypto_signer import CryptoSigner
from securesystemslib.signer._signer import Signer
# securesystemslib.signer and tuf.api.metadata re-export these without `__all__`; mypy --strict wants the defining module.
from tuf.api._payload import MetaFile, Root, Signed, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.metadata import Metadata

from appliance.datadir import write_atomic
from sync.central.config import TufConfig
from sync.central.state import CentralDataDir
from sync.trust import POLICY_TARGET

log = logging.getLogger("sync.central.repository")

ROLES = ("root", "targets", "snapshot", "timestamp")
_METADATA_NAME = re.compile(r"^(?:[1-9][0-9]{0,9}\.(?:root|targets|snapshot)|timestamp)\.json$")
_TARGET_NAME = re.compile(r"^[0-9a-f]{64}\.policy\.toml$")
_ROOT_FILE = re.compile(r"^([1-9][0-9]*)\.root\.json$")


class RepositoryError(Exception):
    """The repository cannot do what was asked (the message says why)."""


@dataclass(frozen=True)
class PublishedPolicy:
    version: int
    sha256: str
    length: int
    published_at: float | None
    targets_version: int


class Repository:
    def __init__(self, data: CentralDataDir, config: TufConfig) -> None:
        self.data = data
        self.config = config
        self.metadata_dir = data.repository / "metadata"
        self.targets_dir = data.repository / "targets"

    # --- reading (no lock: every file is replaced atomically) --------------------------------

    def exists(self) -> bool:
        return (self.metadata_dir / "1.root.json").is_file()

    def root_version(self) -> int:
        versions = [int(m.group(1)) for p in self.metadata_dir.iterdir()
                    if (m := _ROOT_FILE.match(p.name))]
        if not versions:
            raise RepositoryError("the repository has no root metadata yet")
        return max(versions)

    def root_bytes(self) -> bytes:
        """The current root metadata, as served (the boxes' trust anchor)."""
        return (self.metadata_dir / f"{self.root_version()}.root.json").read_bytes()

    def _load(self, name: str, kind: type[Signed]) -> Metadata[Any]:
        md: Metadata[Any] = Metadata.from_file(str(self.metadata_dir / name))
        if not isinstance(md.signed, kind):
            raise RepositoryError(f"{name}: expected {kind.type} metadata")
        return md

    def _current(self) -> tuple[Metadata[Root], Metadata[Targets], Metadata[Snapshot],
                                Metadata[Timestamp]]:
        root = self._load(f"{self.root_version()}.root.json", Root)
        timestamp = self._load("timestamp.json", Timestamp)
        snapshot = self._load(f"{timestamp.signed.snapshot_meta.version}.snapshot.json",
                              Snapshot)
        targets = self._load(f"{snapshot.signed.meta['targets.json'].version}.targets.json",
                             Targets)
        return root, targets, snapshot, timestamp

    def policy(self) -> PublishedPolicy | None:
        """The policy the current metadata lists, None before the first publish."""
        if not self.exists():
            return None
        _, targets, _, _ = self._current()
        return _published(targets)

    def policy_bytes(self) -> bytes | None:
        info = self.policy()
        if info is None:
            return None
        return (self.targets_dir / f"{info.sha256}.policy.toml").read_bytes()

    def status(self) -> dict[str, Any]:
        """Versions and expiry of each role (``policy show``)."""
        root, targets, snapshot, timestamp = self._current()
        out: dict[str, Any] = {}
        for md in (root, targets, snapshot, timestamp):
            signed = md.signed
            role = root.signed.roles[signed.type]
            out[signed.type] = {"version": signed.version,
                                "expires": signed.expires.isoformat(),
                                "keyids": list(role.keyids), "threshold": role.threshold}
        return out

    def metadata_file(self, name: str) -> Path | None:
        """The file to serve for ``/v1/tuf/metadata/{name}``, None if there is none."""
        if not _METADATA_NAME.match(name):
            return None
        path = self.metadata_dir / name
        return path if path.is_file() else None

    def target_file(self, name: str) -> Path | None:
        if not _TARGET_NAME.match(name):
            return None
        path = self.targets_dir / name
        return path if path.is_file() else None

    # --- writing (under the lock) -----------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.data.create()
        with open(self.data.repository / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def init(self) -> bool:
        """Create keys and the first version of every role; False if it already existed."""
        with self._locked():
            if self.exists():
                return False
            now = _now()
            root = Metadata(Root(expires=now + timedelta(seconds=self.config.root_expiry_seconds)))
            signers: dict[str, list[Signer]] = {}
            for role in ROLES:
                count = self.config.root_keys if role == "root" else 1
                signers[role] = [self._new_key() for _ in range(count)]
                for signer in signers[role]:
                    root.signed.add_key(signer.public_key, role)
            root.signed.roles["root"].threshold = self.config.root_threshold
            targets = Metadata(Targets(expires=self._expiry("targets", now)))
            snapshot = Metadata(Snapshot(expires=self._expiry("snapshot", now)))
            timestamp = Metadata(Timestamp(expires=self._expiry("timestamp", now)))
            for md in (root, targets, snapshot, timestamp):
                _sign(md, signers[md.signed.type])
            self._write(root, "1.root.json")
            self._write(targets, "1.targets.json")
            self._write(snapshot, "1.snapshot.json")
            self._write(timestamp, "timestamp.json")
            return True

    def publish(self, data: bytes, policy_version: int) -> PublishedPolicy:
        """Add ``data`` as the ``policy.toml`` target and sign new targets, snapshot and
        timestamp versions. The caller has validated the policy; the version check is here,
        under the lock, so two publishers cannot both pass it."""
        with self._locked():
            root, targets, snapshot, timestamp = self._current()
            last = _published(targets)
            if last is not None and policy_version <= last.version:
                raise RepositoryError(
                    f"policy version {policy_version} is not greater than the published "
                    f"version {last.version}; raise `version` in the file")
            digest = hashlib.sha256(data).hexdigest()
            write_atomic(self.targets_dir / f"{digest}.policy.toml", data)
            target = TargetFile.from_data(POLICY_TARGET, data, ["sha256"])
            target.unrecognized_fields["custom"] = {"policy_version": policy_version,
                                                    "published_at": int(time.time())}
            targets.signed.targets = {POLICY_TARGET: target}
            self._resign_from("targets", root, targets, snapshot, timestamp)
            info = _published(targets)
            assert info is not None
            return info

    def refresh(self, now: datetime | None = None) -> list[str]:
        """Re-sign every role with less than half its lifetime left (and what depends on it);
        returns the roles re-signed."""
        with self._locked():
            now = now or _now()
            root, targets, snapshot, timestamp = self._current()
            stale = [md.signed.type for md in (root, targets, snapshot, timestamp)
                     if md.signed.expires - now < timedelta(seconds=self._lifetime(
                         md.signed.type) / 2)]
            if "root" in stale:
                try:
                    signers = self._signers(root, "root")
                except RepositoryError as exc:
                    # Root keys kept offline: the other roles must still be refreshed.
                    log.warning("root expires %s and cannot be re-signed: %s",
                                root.signed.expires.isoformat(), exc)
                    stale.remove("root")
                else:
                    self._bump(root, now)
                    _sign(root, signers)
                    self._write(root, f"{root.signed.version}.root.json")
            lowest = next((r for r in ("targets", "snapshot", "timestamp") if r in stale), None)
            resigned = [] if lowest is None else self._resign_from(
                lowest, root, targets, snapshot, timestamp)
            return (["root"] if "root" in stale else []) + resigned

    def rotate(self, role: str) -> int:
        """Replace the keys of ``role`` through a new root version, signed by the current root
        keys and, for ``root``, by the new ones too; re-sign the role with its new key. The old
        private keys are deleted. Returns the new root version."""
        if role not in ROLES:
            raise RepositoryError(f"unknown role `{role}`: use one of {', '.join(ROLES)}")
        with self._locked():
            root, targets, snapshot, timestamp = self._current()
            old_root_signers = self._signers(root, "root")
            old_keyids = list(root.signed.roles[role].keyids)
            count = self.config.root_keys if role == "root" else 1
            new_signers = [self._new_key() for _ in range(count)]
            for keyid in old_keyids:
                root.signed.revoke_key(keyid, role)
            for new in new_signers:
                root.signed.add_key(new.public_key, role)
            root.signed.roles[role].threshold = self.config.root_threshold if role == "root" else 1
            self._bump(root, _now())
            root.signatures.clear()
            root_signers: list[Signer] = [*old_root_signers,
                                          *(new_signers if role == "root" else [])]
            for signer in root_signers:
                root.sign(signer, append=True)
            self._write(root, f"{root.signed.version}.root.json")
            if role != "root":
                self._resign_from(role, root, targets, snapshot, timestamp)
            in_use = {k for r in root.signed.roles.values() for k in r.keyids}
            for keyid in old_keyids:
                if keyid not in in_use:
                    (self.data.tuf_keys / f"{keyid}.pem").unlink(missing_ok=True)
            return root.signed.version

    # --- helpers ------------------------------------------------------------------------------

    def _resign_from(self, role: str, root: Metadata[Root], targets: Metadata[Targets],
                     snapshot: Metadata[Snapshot], timestamp: Metadata[Timestamp]) -> list[str]:
        """New versions of ``role`` and of every role above it, in the order boxes read them
        backwards (targets, snapshot, timestamp), so each file exists before it is named."""
        now = _now()
        done: list[str] = []
        if role == "targets":
            self._bump(targets, now)
            _sign(targets, self._signers(root, "targets"))
            self._write(targets, f"{targets.signed.version}.targets.json")
            snapshot.signed.meta["targets.json"] = MetaFile(version=targets.signed.version)
            done.append("targets")
        if role in ("targets", "snapshot"):
            self._bump(snapshot, now)
            _sign(snapshot, self._signers(root, "snapshot"))
            self._write(snapshot, f"{snapshot.signed.version}.snapshot.json")
            timestamp.signed.snapshot_meta = MetaFile(version=snapshot.signed.version)
            done.append("snapshot")
        self._bump(timestamp, now)
        _sign(timestamp, self._signers(root, "timestamp"))
        self._write(timestamp, "timestamp.json")
        return [*done, "timestamp"]

    def _lifetime(self, role: str) -> int:
        return int(getattr(self.config, f"{role}_expiry_seconds"))

    def _expiry(self, role: str, now: datetime) -> datetime:
        return now + timedelta(seconds=self._lifetime(role))

    def _bump(self, md: Metadata[Any], now: datetime) -> None:
        md.signed.version += 1
        md.signed.expires = self._expiry(md.signed.type, now)

    def _new_key(self) -> CryptoSigner:
        signer = CryptoSigner.generate_ed25519()
        write_atomic(self.data.tuf_keys / f"{signer.public_key.keyid}.pem",
                      signer.private_bytes)
        return signer

    def _signers(self, root: Metadata[Root], role: str) -> list[Signer]:
        """Every private key this central holds for ``role``; at least its threshold."""
        spec = root.signed.roles[role]
        signers: list[Signer] = []
        for keyid in spec.keyids:
            path = self.data.tuf_keys / f"{keyid}.pem"
            if path.is_file():
                private = load_pem_private_key(path.read_bytes(), password=None)
                signers.append(CryptoSigner(private, root.signed.keys[keyid]))  # type: ignore[arg-type]
        if len(signers) < spec.threshold:
            raise RepositoryError(
                f"{len(signers)} of the {spec.threshold} private keys needed to sign `{role}` "
                f"are in {self.data.tuf_keys}")
        return signers

    def _write(self, md: Metadata[Any], name: str) -> None:
        write_atomic(self.metadata_dir / name, md.to_bytes())


def _sign(md: Metadata[Any], signers: list[Signer]) -> None:
    md.signatures.clear()
    for signer in signers:
        md.sign(signer, append=True)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _published(targets: Metadata[Targets]) -> PublishedPolicy | None:
    target = targets.signed.targets.get(POLICY_TARGET)
    if target is None:
        return None
    custom = target.custom if isinstance(target.custom, dict) else {}
    return PublishedPolicy(version=int(custom.get("policy_version", 0)),
                           sha256=target.hashes["sha256"], length=target.length,
                           published_at=custom.get("published_at"),
                           targets_version=targets.signed.version)
