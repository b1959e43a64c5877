"""The box's side of policy distribution: python-tuf's ``Updater`` over signed GETs.

Central is a TUF repository (``sync/central/repository.py``); a box trusts the root metadata it
received at enrollment and nothing else. ``make_updater`` points python-tuf's client at
central's ``/v1/tuf/`` routes and ``SignedFetcher`` signs each of its downloads with the box's
key (central serves its repository only to enrolled boxes). The Updater does every TUF check
(signatures and thresholds, versions, expiry, hashes and lengths, root rotation);
``fetch_policy`` adds the one check that is ours: the target's declared policy version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tuf.api import exceptions
# tuf.api.metadata re-exports Root without `__all__`; mypy --strict wants the defining module.
from tuf.api._payload import Root
from tuf.api.metadata import Metadata
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.updater import Updater

from sync.signing import BoxAuth

__all__ = ["METADATA_PATH", "POLICY_TARGET", "TARGETS_PATH", "PolicyTarget", "SignedFetcher",
           "fetch_policy", "make_updater", "save_trusted_root"]

#: Central's routes for the repository (see ``sync/PROTOCOL.md``).
METADATA_PATH = "/v1/tuf/metadata/"
TARGETS_PATH = "/v1/tuf/targets/"
#: The one target: the routing policy; its ``custom`` is ``{"policy_version": N}``.
POLICY_TARGET = "policy.toml"
_CHUNK = 64 * 1024


class SignedFetcher(FetcherInterface):
    """python-tuf's ``FetcherInterface`` on httpx, each GET signed as the box.

    Only URLs under ``base_url`` are fetched. HTTP errors become ``DownloadHTTPError`` (whose
    message carries central's error code, e.g. ``stale_request``), timeouts
    ``SlowRetrievalError``; python-tuf wraps anything else in ``DownloadError``.
    """

    def __init__(self, base_url: str, box_id: str, private_key: Ed25519PrivateKey,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(auth=BoxAuth(box_id, private_key), timeout=timeout,
                                    transport=transport, follow_redirects=False)

    def _fetch(self, url: str) -> Iterator[bytes]:
        if not url.startswith(self.base_url + "/"):
            raise exceptions.DownloadError(f"refusing to fetch {url}: not under {self.base_url}")
        try:
            response = self._client.send(self._client.build_request("GET", url), stream=True)
        except httpx.TimeoutException as exc:
            raise exceptions.SlowRetrievalError(f"timed out fetching {url}") from exc
        if response.status_code >= 400:
            try:
                detail = _error_detail(response.read())
            finally:
                response.close()
            raise exceptions.DownloadHTTPError(
                f"HTTP {response.status_code} from central for {url}{detail}",
                response.status_code)
        return self._chunks(response)

    @staticmethod
    def _chunks(response: httpx.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(_CHUNK)
        except httpx.TimeoutException as exc:
            raise exceptions.SlowRetrievalError("timed out reading from central") from exc
        finally:
            response.close()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SignedFetcher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _error_detail(body: bytes) -> str:
    """``": stale_request: ..."`` from central's error body, or "" if it has none."""
    try:
        error = json.loads(body)["error"]
        return f": {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return ""


def save_trusted_root(metadata_dir: Path, root: Mapping[str, Any] | bytes) -> None:
    """Store the root metadata received at enrollment as the trust anchor (``root.json``).

    Refuses (``ValueError``) anything that is not root metadata signed by a threshold of its own
    root keys, so a corrupted enrollment answer does not become the box's trust root.
    """
    data = root if isinstance(root, bytes) else json.dumps(root).encode("utf-8")
    try:
        metadata = Metadata[Root].from_bytes(data)
    except Exception as exc:  # noqa: BLE001 - python-tuf raises several kinds here
        raise ValueError(f"not TUF root metadata: {exc}") from exc
    if not isinstance(metadata.signed, Root):
        raise ValueError(f"expected root metadata, got {metadata.signed.type}")
    try:
        metadata.signed.verify_delegate(Root.type, metadata.signed_bytes, metadata.signatures)
    except exceptions.UnsignedMetadataError as exc:
        raise ValueError(f"root metadata is not signed by its own root keys: {exc}") from exc
    metadata_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = metadata_dir / "root.json"
    tmp = metadata_dir / ".root.json.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, target)


def make_updater(metadata_dir: Path, targets_dir: Path, central_url: str,
                 fetcher: FetcherInterface, bootstrap: bytes | None = None) -> Updater:
    """A python-tuf ``Updater`` for central's repository.

    With ``bootstrap`` None the trust anchor is ``metadata_dir/root.json``: the root saved at
    enrollment (``save_trusted_root``), which the Updater itself moves forward through every
    root rotation it verifies. An Updater refreshes once; make a new one for each sync round.
    """
    base = central_url.rstrip("/")
    metadata_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    targets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Updater(str(metadata_dir), base + METADATA_PATH, str(targets_dir),
                   base + TARGETS_PATH, fetcher, bootstrap=bootstrap)


@dataclass(frozen=True)
class PolicyTarget:
    """The policy central published, verified by the Updater."""

    version: int
    data: bytes
    path: Path
    sha256: str


def fetch_policy(updater: Updater) -> PolicyTarget | None:
    """Refresh, then download (or reuse the cached copy of) the ``policy.toml`` target.

    None when central has published no policy yet. Raises python-tuf's ``RepositoryError``
    (tampered, rolled back, expired or badly signed metadata) and ``DownloadError`` (network,
    HTTP errors) unchanged, and ``ValueError`` when the target carries no valid
    ``policy_version``. Checking the policy itself (``parse_policy``, its ``version`` equal to
    this one and greater than the applied one) is the caller's job.
    """
    updater.refresh()
    info = updater.get_targetinfo(POLICY_TARGET)
    if info is None:
        return None
    custom = info.custom
    version = custom.get("policy_version") if isinstance(custom, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError(f"target {POLICY_TARGET} has no valid custom.policy_version")
    path = updater.find_cached_target(info)
    if path is None:
        path = updater.download_target(info)
    data = Path(path).read_bytes()
    return PolicyTarget(version=version, data=data, path=Path(path),
                        sha256=info.hashes.get("sha256", ""))
