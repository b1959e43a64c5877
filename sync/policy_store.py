"""Pulling the signed policy from central, and keeping the last known-good one.

One round (``pull_policy``, blocking: the agent runs it in a worker thread): python-tuf's
Updater refreshes the box's trusted metadata from central and downloads the ``policy.toml``
target (every TUF check: signatures and thresholds, versions, expiry, hashes and lengths), then
the policy itself is checked here: it parses (``parse_policy``), its ``version`` is the one the
signed target declares, and it is newer than the last known-good one (the same version is
accepted only when it is the same file). The agent then checks it against the served models
and, if it passes, stores it (``store_last_known_good``) before applying it.

Whatever is refused leaves the box on its last known-good policy. A refusal is an ``Outcome``
with a reason that the status, the heartbeat and the ``policy_rejected`` audit event show:

- ``signature``: metadata not signed by a threshold of the keys the box trusts (a bad
  signature, an unknown key);
- ``tampered``: the policy does not match the length and hash in signed metadata;
- ``rollback``: metadata or policy older than what the box already trusts or applied;
- ``expired``: only expired metadata (a freeze attack, or central not re-signing): the box is
  *frozen* on its last known-good policy;
- ``invalid``: metadata or a policy that cannot be used (``parse_policy`` errors, a version
  that does not match the signed one, a fallback model the box does not serve).

A network or HTTP failure is not a refusal: it raises ``CentralUnreachable``/``CentralRefused``
and the agent retries with backoff.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tuf.api import exceptions

from appliance.policy import PolicyConfig, PolicyError, parse_policy
from sync.client import CentralRefused, CentralUnreachable
from sync.paths import SyncPaths, write_atomic
from sync.trust import SignedFetcher, fetch_policy, make_updater


@dataclass(frozen=True)
class Outcome:
    """``status``: ``applied`` (a new policy to apply), ``current`` (nothing new), ``none``
    (central has published none), ``rejected`` or ``frozen``."""

    status: str
    version: int | None = None
    reason: str = ""
    detail: str = ""
    policy: PolicyConfig | None = None
    data: bytes = b""

    @property
    def refused(self) -> bool:
        return self.status in ("rejected", "frozen")


def load_last_known_good(data_dir: Path) -> tuple[PolicyConfig, bytes] | None:
    """The policy central last sent and the box applied, or None. ``PolicyError`` when the
    file is there but unusable (the start stops rather than fall back to a looser policy)."""
    path = SyncPaths(data_dir).policy_file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the last known-good policy: {exc}") from exc
    return parse_policy(data, str(path)), data


def store_last_known_good(data_dir: Path, data: bytes) -> None:
    paths = SyncPaths(data_dir)
    paths.policy_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(paths.policy_file, data)


def pull_policy(data_dir: Path, central_url: str, box_id: str, key: Ed25519PrivateKey,
                timeout: float) -> Outcome:
    """One refresh and download, judged against the last known-good policy (blocking)."""
    paths = SyncPaths(data_dir)
    with SignedFetcher(central_url, box_id, key, timeout=timeout) as fetcher:
        try:
            updater = make_updater(paths.metadata_dir, paths.targets_dir, central_url, fetcher)
            target = fetch_policy(updater)
        except exceptions.ExpiredMetadataError as exc:
            return Outcome("frozen", reason="expired", detail=f"expired metadata: {exc}")
        except exceptions.LengthOrHashMismatchError as exc:
            return Outcome("rejected", reason="tampered", detail=f"tampered target: {exc}")
        except exceptions.UnsignedMetadataError as exc:
            return Outcome("rejected", reason="signature",
                           detail=f"bad signature or unknown key: {exc}")
        except (exceptions.BadVersionNumberError, exceptions.EqualVersionNumberError) as exc:
            return Outcome("rejected", reason="rollback", detail=f"metadata rollback: {exc}")
        except exceptions.DownloadHTTPError as exc:
            if exc.status_code >= 500:
                raise CentralUnreachable(str(exc)) from exc
            raise CentralRefused(exc.status_code, "tuf_download", str(exc)) from exc
        except exceptions.DownloadError as exc:
            raise CentralUnreachable(_download_problem(exc)) from exc
        except exceptions.RepositoryError as exc:
            return Outcome("rejected", reason="invalid", detail=f"invalid metadata: {exc}")
        except ValueError as exc:
            return Outcome("rejected", reason="invalid", detail=str(exc))
    if target is None:
        return Outcome("none")
    return judge(data_dir, target.version, target.data)


def judge(data_dir: Path, version: int, data: bytes) -> Outcome:
    """Whether a verified target may replace the last known-good policy."""
    try:
        policy = parse_policy(data, f"central policy version {version}")
    except PolicyError as exc:
        return Outcome("rejected", version, "invalid", str(exc))
    if policy.version != version:
        return Outcome("rejected", version, "invalid",
                       f"the policy says version {policy.version} but central signed it as "
                       f"version {version}")
    try:
        current = load_last_known_good(data_dir)
    except PolicyError:
        current = None  # an unreadable copy is replaced by any verified policy
    if current is not None:
        applied, applied_data = current
        if _digest(applied_data) == _digest(data):
            return Outcome("current", version)
        if version <= applied.version:
            return Outcome("rejected", version, "rollback",
                           f"policy version {version} is not newer than the applied version "
                           f"{applied.version}")
    return Outcome("applied", version, policy=policy, data=data)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download_problem(exc: BaseException) -> str:
    """What failed under python-tuf's ``DownloadError``, worded like the other jobs' errors
    ("central cannot be reached ...") when the network is the cause."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, httpx.TransportError):
            kind = "timed out" if isinstance(cause, httpx.TimeoutException) else (
                "cannot be reached")
            return f"central {kind} (policy download): {type(cause).__name__}: {cause}"
        cause = cause.__cause__ or cause.__context__
    return f"policy download failed: {exc}"
