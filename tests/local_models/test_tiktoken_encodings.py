"""tiktoken encodings from installed files: same tokens as tiktoken, no network, no cache
written anywhere, and a file that is not the pinned one is never used."""

from __future__ import annotations

import hashlib
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.load
from tiktoken_ext import openai_public  # type: ignore[import-untyped]

from local_models.artifacts import ArtifactStore
from local_models.catalog import load_catalog
from local_models.errors import ArtifactHashMismatch, UnknownArtifact
from local_models.tiktoken_encodings import (
    ENCODINGS,
    _call_with_global,
    load_encoding,
    parse_tiktoken_bpe,
)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No network, no tiktoken cache env, and an empty temp dir that must stay empty."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


def ranks_path(installed: ArtifactStore, name: str) -> Path:
    return installed.ensure_verified(name)[f"{name}.tiktoken"]


def test_cl100k_base_matches_tiktoken_offline(installed: ArtifactStore, offline: Path) -> None:
    encoding = load_encoding("cl100k_base", ranks_path(installed, "cl100k_base"))
    assert encoding.name == "cl100k_base"
    assert encoding.encode("hello world") == [15339, 1917]
    assert encoding.encode("<|endoftext|>", allowed_special="all") == [100257]
    assert encoding.n_vocab == 100277
    assert list(offline.iterdir()) == []


def test_o200k_base_matches_tiktoken_offline(installed: ArtifactStore, offline: Path) -> None:
    encoding = load_encoding("o200k_base", ranks_path(installed, "o200k_base"))
    assert encoding.encode("hello world") == [24912, 2375]
    assert encoding.decode(encoding.encode("naïve café, 東京")) == "naïve café, 東京"
    assert encoding.encode("<|endoftext|>", allowed_special="all") == [199999]
    assert list(offline.iterdir()) == []
    # tiktoken's own module is untouched: its constructor still points at the real loader.
    assert openai_public.load_tiktoken_bpe is tiktoken.load.load_tiktoken_bpe


@pytest.mark.parametrize("name", ENCODINGS)
def test_our_parser_equals_tiktokens(
    installed: ArtifactStore, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = ranks_path(installed, name)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken's parser, without its cache
    assert parse_tiktoken_bpe(path.read_bytes()) == tiktoken.load.load_tiktoken_bpe(str(path))


@pytest.mark.parametrize("name", ENCODINGS)
def test_catalog_pins_the_hash_tiktoken_pins(name: str) -> None:
    pinned: list[str | None] = []

    def capture(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        pinned.append(expected_hash)
        return {}

    definition: dict[str, Any] = _call_with_global(
        openai_public.ENCODING_CONSTRUCTORS[name], "load_tiktoken_bpe", capture
    )
    assert definition["name"] == name
    assert pinned == [load_catalog().get(name).files[0].sha256]


def test_a_file_that_is_not_the_pinned_one_is_refused(tmp_path: Path, offline: Path) -> None:
    forged = tmp_path / "cl100k_base.tiktoken"
    forged.write_bytes(b"aGVsbG8= 0\n")
    with pytest.raises(ArtifactHashMismatch, match="will not be loaded") as caught:
        load_encoding("cl100k_base", forged)
    assert caught.value.actual_sha256 == hashlib.sha256(b"aGVsbG8= 0\n").hexdigest()
    assert "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7" in str(caught.value)


def test_unknown_encoding(tmp_path: Path) -> None:
    with pytest.raises(UnknownArtifact, match="cl100k_base, o200k_base"):
        load_encoding("p50k_base", tmp_path / "x")


def test_parser_reports_the_bad_line() -> None:
    assert parse_tiktoken_bpe(b"aGk= 7\n\nYQ== 0\n") == {b"hi": 7, b"a": 0}
    with pytest.raises(Exception, match="x.tiktoken:2"):
        parse_tiktoken_bpe(b"aGk= 7\nnot base64!! 1\n", "x.tiktoken")
