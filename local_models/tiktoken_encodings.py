"""OpenAI's tiktoken encodings (cl100k_base, o200k_base) built from installed files, offline.

`tiktoken.get_encoding` downloads its BPE files on first use, which fails on a box without
internet. The artifact store installs the same files (catalog entries `cl100k_base` and
`o200k_base`); this module turns such a file into the `tiktoken.Encoding` tiktoken itself would
have built, without touching the network or any cache outside the models directory.

Where the definition comes from: the pattern, the special tokens and the sha256 of each
encoding live inside tiktoken's own constructor functions (`tiktoken_ext.openai_public`), which
call `load_tiktoken_bpe(URL, expected_hash=...)`. We run a copy of the constructor whose global
`load_tiktoken_bpe` is our loader for the local file, so:

- nothing is copied out of tiktoken, so nothing can drift from the installed version;
- the sha256 the file must have is the one tiktoken pins, checked before the file is parsed;
- tiktoken's module is not patched, so other threads using tiktoken are unaffected.

Why not `tiktoken.load.load_tiktoken_bpe(path)`: it reads every path through
`read_file_cached`, which copies the file into `$TMPDIR/data-gym-cache` and afterwards reads that
copy instead, i.e. from outside the data directory. The file format (one `base64 rank` pair
per line) is parsed here instead; a test checks it against tiktoken's parser.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import types
from pathlib import Path
from typing import Any

import tiktoken
from tiktoken_ext import openai_public  # type: ignore[import-untyped]

from local_models.errors import ArtifactError, ArtifactHashMismatch, UnknownArtifact

__all__ = ["ENCODINGS", "load_encoding"]

#: The encodings this module can build (tiktoken defines more; these are in the catalog).
ENCODINGS = ("cl100k_base", "o200k_base")


def load_encoding(name: str, path: Path) -> tiktoken.Encoding:
    """Build encoding `name` from the BPE file at `path` (installed by the artifact store).

    Raises UnknownArtifact for other names and ArtifactHashMismatch when the file is not the
    one tiktoken pins; the encoding is then not built.
    """
    if name not in ENCODINGS:
        raise UnknownArtifact(name, ENCODINGS, what="tiktoken encoding")
    data = path.read_bytes()
    loads: list[str] = []

    def load_tiktoken_bpe(
        tiktoken_bpe_file: str, expected_hash: str | None = None
    ) -> dict[bytes, int]:
        loads.append(tiktoken_bpe_file)  # tiktoken's download URL; the bytes come from `path`
        actual = hashlib.sha256(data).hexdigest()
        if expected_hash is None or actual != expected_hash:
            raise ArtifactHashMismatch(
                str(path),
                expected_sha256=expected_hash or "(tiktoken pins no hash)",
                actual_sha256=actual,
                consequence="it will not be loaded",
            )
        return parse_tiktoken_bpe(data, str(path))

    constructor = openai_public.ENCODING_CONSTRUCTORS[name]
    definition = _call_with_global(constructor, "load_tiktoken_bpe", load_tiktoken_bpe)
    if len(loads) != 1:
        # A future tiktoken that gets its ranks some other way must fail here, loudly, rather
        # than build an encoding from bytes we did not verify.
        raise ArtifactError(f"tiktoken's {name} constructor did not load its ranks as expected")
    return tiktoken.Encoding(**definition)


def _call_with_global(function: types.FunctionType, name: str, value: object) -> dict[str, Any]:
    """Call a copy of `function` that sees `value` as its global `name`.

    The copy gets its own globals dict, so the real module is never modified and other threads
    calling it are unaffected.
    """
    isolated = types.FunctionType(
        function.__code__,
        {**function.__globals__, name: value},
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    result: dict[str, Any] = isolated()
    return result


def parse_tiktoken_bpe(data: bytes, where: str = "<bytes>") -> dict[bytes, int]:
    """Parse the `.tiktoken` format: one `base64(token) rank` pair per line."""
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error) as exc:
            raise ArtifactError(f"{where}:{number}: not a tiktoken BPE line") from exc
    return ranks
