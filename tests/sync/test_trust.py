"""Policy distribution through TUF: a real central, python-tuf's real ``Updater`` on the box
side (``sync.trust``), and the attacks TUF is there to stop, each made on central's disk the
way an attacker who controls the server (or the network) would make them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer._crypto_signer import CryptoSigner
from tuf.api import exceptions
from tuf.api._payload import Root
from tuf.api.metadata import Metadata

from appliance.policy import parse_policy
from sync.trust import POLICY_TARGET, SignedFetcher, fetch_policy, save_trusted_root
from tests.sync.central_support import (CentralProcess, EnrolledBox, central_server,
                                        enroll_box, publish_policy, run_central_cli)

POLICY_V1 = 'version = 1\ndescription = "first"\n'
POLICY_V2 = ('version = 2\ndescription = "second"\n[allowed_zones]\n'
             'internal = ["device", "site"]\n')


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralProcess]:
    with central_server(tmp_path_factory.mktemp("central") / "data") as proc:
        yield proc


@pytest.fixture(scope="module")
def box(central: CentralProcess) -> EnrolledBox:
    box = enroll_box(central, "box-tuf")
    publish_policy(central.data_dir, POLICY_V1)
    return box


def _metadata(central: CentralProcess) -> Path:
    return central.data_dir / "repository" / "metadata"


def test_publish_and_fetch_with_the_updater(central: CentralProcess, box: EnrolledBox,
                                            tmp_path: Path) -> None:
    fetched = fetch_policy(box.updater(tmp_path))
    assert fetched is not None and fetched.version == 1
    assert fetched.data.decode() == POLICY_V1
    assert parse_policy(fetched.data).description == "first"

    info = publish_policy(central.data_dir, POLICY_V2)
    assert info["version"] == 2
    fetched = fetch_policy(box.updater(tmp_path))  # a new Updater per round, same cache
    assert fetched is not None and fetched.version == 2
    assert parse_policy(fetched.data).allowed_zones.internal == ("device", "site")
    assert fetched.sha256 == info["sha256"]

    shown = json.loads(run_central_cli("policy", "show", "--json",
                                       data_dir=central.data_dir).stdout)
    assert shown["policy"]["version"] == 2 and shown["content"] == POLICY_V2
    assert shown["roles"]["root"]["threshold"] == 1


def test_publish_refuses_an_invalid_or_older_policy(central: CentralProcess,
                                                    box: EnrolledBox, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("version = 50\n[allowed_zones]\ninternal = [\"moon\"]\n")
    result = run_central_cli("policy", "publish", str(bad), data_dir=central.data_dir)
    assert result.returncode == 1 and "allowed_zones.internal" in result.stderr
    old = tmp_path / "old.toml"
    old.write_text("version = 1\n")
    result = run_central_cli("policy", "publish", str(old), data_dir=central.data_dir)
    assert result.returncode == 1 and "not greater than the published version" in result.stderr


def test_the_repository_is_only_served_to_enrolled_boxes(central: CentralProcess,
                                                         box: EnrolledBox,
                                                         tmp_path: Path) -> None:
    from sync.signing import generate_key

    stranger = EnrolledBox(central.url, box.box_id, generate_key(), box.root)
    with pytest.raises(exceptions.DownloadHTTPError, match="signature_invalid") as info:
        fetch_policy(stranger.updater(tmp_path))
    assert info.value.status_code == 401
    with SignedFetcher(central.url, box.box_id, box.key) as fetcher:
        with pytest.raises(exceptions.DownloadError, match="not under"):
            fetcher.download_bytes("http://elsewhere.test/v1/tuf/metadata/timestamp.json", 100)
        missing = central.url + "/v1/tuf/metadata/99.root.json"
        with pytest.raises(exceptions.DownloadHTTPError) as not_found:
            fetcher.download_bytes(missing, 1000)
        assert not_found.value.status_code == 404


def test_tampered_target_is_rejected(central: CentralProcess, box: EnrolledBox,
                                     tmp_path: Path) -> None:
    updater = box.updater(tmp_path / "first")
    updater.refresh()
    info = updater.get_targetinfo(POLICY_TARGET)
    assert info is not None
    stored = central.data_dir / "repository" / "targets" / f"{info.hashes['sha256']}.policy.toml"
    original = stored.read_bytes()
    try:
        stored.write_bytes(original.replace(b"version", b"VERSION"))
        with pytest.raises(exceptions.LengthOrHashMismatchError):
            updater.download_target(info)
    finally:
        stored.write_bytes(original)


def test_tampered_metadata_is_rejected(central: CentralProcess, box: EnrolledBox,
                                       tmp_path: Path) -> None:
    timestamp = json.loads((_metadata(central) / "timestamp.json").read_text())
    snapshot_version = timestamp["signed"]["meta"]["snapshot.json"]["version"]
    snapshot_file = _metadata(central) / f"{snapshot_version}.snapshot.json"
    snapshot = json.loads(snapshot_file.read_text())
    targets_file = _metadata(central) / (
        f"{snapshot['signed']['meta']['targets.json']['version']}.targets.json")
    original = targets_file.read_bytes()
    targets = json.loads(original)
    entry = targets["signed"]["targets"][POLICY_TARGET]
    entry["custom"]["policy_version"] = 999  # claim a newer policy without the targets key
    try:
        targets_file.write_text(json.dumps(targets))
        with pytest.raises(exceptions.UnsignedMetadataError):
            fetch_policy(box.updater(tmp_path))  # a box that has not cached this targets yet
    finally:
        targets_file.write_bytes(original)


def test_rollback_of_the_timestamp_is_rejected(central: CentralProcess, box: EnrolledBox,
                                               tmp_path: Path) -> None:
    current = _metadata(central) / "timestamp.json"
    old = current.read_bytes()  # validly signed, unexpired, but older
    publish_policy(central.data_dir, f"version = {int(time.time())}\n")
    fetch_policy(box.updater(tmp_path))  # the box now trusts the newer timestamp
    newer = current.read_bytes()
    try:
        current.write_bytes(old)
        with pytest.raises(exceptions.BadVersionNumberError):
            fetch_policy(box.updater(tmp_path))
    finally:
        current.write_bytes(newer)
    assert fetch_policy(box.updater(tmp_path)) is not None


def test_mix_and_match_is_rejected(central: CentralProcess, box: EnrolledBox,
                                   tmp_path: Path) -> None:
    """A snapshot names a targets version; serving another one under that name fails."""
    timestamp = json.loads((_metadata(central) / "timestamp.json").read_text())
    snapshot = json.loads((_metadata(central) /
                           f"{timestamp['signed']['meta']['snapshot.json']['version']}"
                           ".snapshot.json").read_text())
    version = snapshot["signed"]["meta"]["targets.json"]["version"]
    wanted = _metadata(central) / f"{version}.targets.json"
    original = wanted.read_bytes()
    try:
        wanted.write_bytes((_metadata(central) / f"{version - 1}.targets.json").read_bytes())
        with pytest.raises(exceptions.BadVersionNumberError):
            fetch_policy(box.updater(tmp_path))
    finally:
        wanted.write_bytes(original)


def _wait_until_expired(metadata_file: Path) -> None:
    expires = datetime.fromisoformat(
        json.loads(metadata_file.read_text())["signed"]["expires"].replace("Z", "+00:00"))
    while datetime.now(UTC) <= expires + timedelta(seconds=0.2):
        time.sleep(0.2)


def test_frozen_metadata_expires(tmp_path: Path) -> None:
    """With the automatic refresh off, central keeps serving the same timestamp: once it
    expired, the box refuses it (a freeze attack looks the same to the box)."""
    config = "[tuf]\ntimestamp_expiry_seconds = 2\nauto_refresh_timestamp = false\n"
    with central_server(tmp_path / "data", config) as proc:
        box = enroll_box(proc, "box-frozen")
        publish_policy(proc.data_dir, POLICY_V1, config=proc.config_path)
        assert fetch_policy(box.updater(tmp_path / "box")) is not None
        _wait_until_expired(proc.data_dir / "repository" / "metadata" / "timestamp.json")
        with pytest.raises(exceptions.ExpiredMetadataError):
            fetch_policy(box.updater(tmp_path / "box"))


def test_central_refreshes_the_timestamp_before_it_expires(tmp_path: Path) -> None:
    with central_server(tmp_path / "data", "[tuf]\ntimestamp_expiry_seconds = 2\n") as proc:
        box = enroll_box(proc, "box-fresh")
        publish_policy(proc.data_dir, POLICY_V1, config=proc.config_path)
        timestamp = proc.data_dir / "repository" / "metadata" / "timestamp.json"
        published = json.loads(timestamp.read_text())["signed"]
        first_expiry = datetime.fromisoformat(published["expires"].replace("Z", "+00:00"))
        while datetime.now(UTC) <= first_expiry + timedelta(seconds=0.5):
            time.sleep(0.2)
        current = json.loads(timestamp.read_text())["signed"]
        assert current["version"] > published["version"], proc.output
        fetched = fetch_policy(box.updater(tmp_path / "box"))
        assert fetched is not None and fetched.version == 1


def _forge_root(proc: CentralProcess, signers: int) -> Path:
    """Root version N+1 signed by ``signers`` of central's current root keys."""
    metadata = proc.data_dir / "repository" / "metadata"
    versions = sorted(int(p.name.split(".")[0]) for p in metadata.glob("*.root.json"))
    current = Metadata[Root].from_file(str(metadata / f"{versions[-1]}.root.json"))
    root = current.signed
    assert isinstance(root, Root)
    root.version += 1
    root.roles["targets"].threshold = 1
    current.signatures.clear()
    for keyid in root.roles["root"].keyids[:signers]:
        private = load_pem_private_key(
            (proc.data_dir / "secrets" / "tuf" / f"{keyid}.pem").read_bytes(), None)
        current.sign(CryptoSigner(private, root.keys[keyid]), append=True)  # type: ignore[arg-type]
    path = metadata / f"{root.version}.root.json"
    path.write_bytes(current.to_bytes())
    return path


def test_threshold_root_and_key_rotation(tmp_path: Path) -> None:
    """Root 2 of 3: one stolen root key cannot make a root the box accepts; a rotation by
    central (old and new root keys) is followed, and publishing goes on after it."""
    with central_server(tmp_path / "data", "[tuf]\nroot_keys = 3\nroot_threshold = 2\n") as proc:
        box = enroll_box(proc, "box-threshold")
        assert box.root["signed"]["roles"]["root"]["threshold"] == 2
        assert len(box.root["signed"]["roles"]["root"]["keyids"]) == 3
        publish_policy(proc.data_dir, POLICY_V1, config=proc.config_path)
        state = tmp_path / "box"
        assert fetch_policy(box.updater(state)) is not None

        forged = _forge_root(proc, signers=1)
        with pytest.raises(exceptions.UnsignedMetadataError):
            fetch_policy(box.updater(state))
        forged.unlink()

        old_root_keys = set(box.root["signed"]["roles"]["root"]["keyids"])
        result = run_central_cli("keys", "rotate", "root", "--json", data_dir=proc.data_dir,
                                 config=proc.config_path)
        assert result.returncode == 0, result.stderr
        rotated = json.loads(result.stdout)
        assert rotated["root_version"] == 2
        new_root_keys = set(rotated["roles"]["root"]["keyids"])
        assert len(new_root_keys) == 3 and not new_root_keys & old_root_keys
        assert not any((proc.data_dir / "secrets" / "tuf" / f"{k}.pem").exists()
                       for k in old_root_keys)

        fetched = fetch_policy(box.updater(state))
        assert fetched is not None
        trusted = json.loads((state / "metadata" / "root.json").read_text())["signed"]
        assert trusted["version"] == 2 and set(trusted["roles"]["root"]["keyids"]) == new_root_keys

        for role in ("timestamp", "targets"):
            result = run_central_cli("keys", "rotate", role, data_dir=proc.data_dir,
                                     config=proc.config_path)
            assert result.returncode == 0, result.stderr
        publish_policy(proc.data_dir, POLICY_V2, config=proc.config_path)
        fetched = fetch_policy(box.updater(state))
        assert fetched is not None and fetched.version == 2
        trusted = json.loads((state / "metadata" / "root.json").read_text())["signed"]
        assert trusted["version"] == 4


def test_save_trusted_root_refuses_a_tampered_root(box: EnrolledBox, tmp_path: Path) -> None:
    tampered = json.loads(json.dumps(box.root))
    tampered["signed"]["roles"]["targets"]["threshold"] = 5
    with pytest.raises(ValueError, match="not signed"):
        save_trusted_root(tmp_path / "m", tampered)
    with pytest.raises(ValueError, match="not TUF root"):
        save_trusted_root(tmp_path / "m", {"signed": {}})
    save_trusted_root(tmp_path / "m", box.root)
    assert (tmp_path / "m" / "root.json").is_file()
