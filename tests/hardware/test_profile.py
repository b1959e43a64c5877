"""Profile choice for fake boxes, validation of profile files, and the report built from both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardware import (
    GpuInfo,
    HardwareInfo,
    ProfileError,
    choose_profile,
    format_report,
    load_profiles,
    report_dict,
)

GIB = 1024**3
H100 = GpuInfo("NVIDIA H100 80GB HBM3", "nvidia", 80 * GIB, "550.54.15")
X86_SIMD = ("sse4_2", "avx", "avx2", "fma", "f16c")


def box(
    cores: int,
    ram_gib: float,
    *,
    arch: str = "x86_64",
    simd: tuple[str, ...] = X86_SIMD,
    gpus: tuple[GpuInfo, ...] = (),
    offload: bool = False,
) -> HardwareInfo:
    return HardwareInfo(
        cpu_model="test CPU",
        arch=arch,
        cores_physical=cores,
        cores_logical=cores,
        cores_usable=cores,
        simd=simd,
        ram_bytes=int(ram_gib * GIB),
        gpus=gpus,
        gpu_offload_supported=offload,
    )


def test_every_shipped_profile_loads() -> None:
    specs = load_profiles()
    names = [s.name for s in specs]
    assert names == ["gpu-server", "cpu-server", "edge-x86", "arm-board", "minimal"]
    assert {s.settings.chat_model for s in specs} == {"gemma-3-270m"}
    assert all(s.source.name == f"{s.name}.toml" for s in specs)
    assert specs[-1].match.mismatches(box(1, 0.5, arch="riscv64", simd=())) == []


def test_small_x86_edge_box_gets_one_context_on_all_cores() -> None:
    profile = choose_profile(box(2, 7.6))
    assert profile.name == "edge-x86"
    assert (profile.pool_size, profile.threads, profile.gpu_layers) == (1, 2, 0)
    assert profile.context_length == 4096
    assert profile.reason == (
        "x86_64, 2 usable cores, 7.6 GiB RAM, no GPU: "
        "edge-x86 (threads 2 = 2 usable cores / pool 1)"
    )


def test_two_core_box_with_plenty_of_ram_is_still_one_context() -> None:
    profile = choose_profile(box(2, 23.5))
    assert (profile.name, profile.pool_size, profile.threads) == ("edge-x86", 1, 2)


def test_gpu_server_with_offload_puts_all_layers_on_the_gpu() -> None:
    profile = choose_profile(box(32, 256, gpus=(H100,), offload=True))
    assert profile.name == "gpu-server"
    assert (profile.gpu_layers, profile.pool_size, profile.context_length) == (-1, 4, 8192)
    assert profile.threads == 8
    assert "with offload" in profile.reason and "all layers on the GPU" in profile.reason


def test_gpu_server_whose_build_cannot_offload_gets_cpu_settings() -> None:
    profile = choose_profile(box(32, 256, gpus=(H100,), offload=False))
    assert profile.name == "cpu-server"
    assert profile.gpu_layers == 0
    assert (profile.pool_size, profile.threads) == (8, 4)
    assert "cannot offload" in profile.reason
    assert "not gpu-server" in profile.reason


def test_gpu_too_small_is_skipped_with_reason() -> None:
    tiny = GpuInfo("NVIDIA GT 710", "nvidia", 1 * GIB, "470.1")
    profile = choose_profile(box(4, 16, gpus=(tiny,), offload=True))
    assert profile.name == "edge-x86"
    assert "not gpu-server: needs a GPU with at least 2 GiB" in profile.reason


def test_gpu_with_unknown_memory_is_used() -> None:
    unknown = GpuInfo("NVIDIA L4", "nvidia", None, None)
    assert choose_profile(box(8, 32, gpus=(unknown,), offload=True)).name == "gpu-server"


def test_arm_board() -> None:
    pi4 = box(4, 3.7, arch="aarch64", simd=("neon",))
    profile = choose_profile(pi4)
    assert profile.name == "arm-board"
    assert (profile.pool_size, profile.threads, profile.context_length) == (1, 4, 2048)
    assert profile.gpu_layers == 0


def test_arm_without_neon_and_unknown_arch_fall_back_to_minimal() -> None:
    assert choose_profile(box(4, 4, arch="aarch64", simd=())).name == "minimal"
    profile = choose_profile(box(1, 1, arch="riscv64", simd=()))
    assert (profile.name, profile.pool_size, profile.threads) == ("minimal", 1, 1)


def test_cpu_server_pool_is_one_context_per_four_cores() -> None:
    profile = choose_profile(box(16, 64))
    assert profile.name == "cpu-server"
    assert (profile.pool_size, profile.threads) == (4, 4)
    assert "pool 4 = 16 usable cores / 4" in profile.reason


VALID = """\
name = "{name}"
description = "test profile"
priority = {priority}

[match]
{match}

[settings]
threads = "auto"
gpu_layers = 0
context_length = 2048
pool_size = 1
chat_model = "gemma-3-270m"
batch_size = 64
"""


def write(directory: Path, name: str, *, priority: int = 1, match: str = "") -> Path:
    path = directory / f"{name}.toml"
    path.write_text(VALID.format(name=name, priority=priority, match=match))
    return path


def test_highest_priority_match_wins(tmp_path: Path) -> None:
    write(tmp_path, "low", priority=1)
    write(tmp_path, "high", priority=5, match="min_cores = 2")
    write(tmp_path, "higher-but-no-match", priority=9, match="min_cores = 64")
    specs = load_profiles(tmp_path)
    assert [s.name for s in specs] == ["higher-but-no-match", "high", "low"]
    assert choose_profile(box(4, 8), specs).name == "high"
    assert choose_profile(box(1, 8), specs).name == "low"


def test_no_match_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "big", match="min_cores = 64")
    with pytest.raises(ProfileError, match="no profile matches"):
        choose_profile(box(2, 8), load_profiles(tmp_path))


def _error(tmp_path: Path, text: str) -> str:
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(ProfileError) as caught:
        load_profiles(tmp_path)
    return str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "batch_size = 64",
            "batch_size = 64\ntemperature = 0.7",
            "settings.temperature: unknown key",
        ),
        ('threads = "auto"', 'threads = "many"', 'settings.threads: expected an integer or "auto"'),
        ("pool_size = 1", "pool_size = 1.5", "settings.pool_size: expected an integer"),
        ("pool_size = 1", "pool_size = 0", "settings.pool_size: must be at least 1"),
        ("priority = 1", "priority = true", "priority: expected an integer, got bool"),
        ("gpu_layers = 0", "gpu_layers = -1", "settings.gpu_layers: must be 0 unless"),
        ("context_length = 2048", "", "settings.context_length: missing"),
        ('name = "bad"', 'name = "other"', "name: 'other' must match the file name"),
        ("[match]", '[match]\nmin_ram_gb = "lots"', "match.min_ram_gb: expected a number"),
        ("[match]", '[match]\narch = "x86_64"', "match.arch: expected a list of strings"),
        ("[match]", "[match]\nrequires_gpus = true", "match.requires_gpus: unknown key"),
        ("priority = 1", "priority = 1\nweight = 3", "weight: unknown key"),
        ("[settings]", "[settings", "cannot read"),
    ],
)
def test_bad_profile_file_names_file_and_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    text = VALID.format(name="bad", priority=1, match="")
    assert old in text
    assert f"bad.toml: {expected}" in _error(tmp_path, text.replace(old, new, 1))


def test_report_text_and_json() -> None:
    info = box(32, 256, gpus=(H100,), offload=False)
    profile = choose_profile(info)
    text = format_report(info, profile)
    assert "NVIDIA H100 80GB HBM3, nvidia, 80.0 GiB, driver 550.54.15" in text
    assert "GPU offload in this llama.cpp build: no" in text
    assert "cpu-server" in text and profile.reason in text
    rows = [line for line in text.splitlines() if line.startswith("  ")]
    starts = {len(row) - len(row.split(":", 1)[1].lstrip()) for row in rows}
    assert len(rows) > 10 and len(starts) == 1  # every value starts in one column
    data = json.loads(json.dumps(report_dict(info, profile)))
    assert data["hardware"]["gpus"][0]["memory_bytes"] == 80 * GIB
    assert data["profile"]["name"] == "cpu-server" and data["profile"]["threads"] == 4
