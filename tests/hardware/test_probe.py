"""Probe parsers on fixture text from machines we do not have, and probe() on a fake /proc."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from hardware import (
    GpuInfo,
    parse_cgroup_cpu_max,
    parse_cpuinfo,
    parse_meminfo,
    parse_nvidia_proc_information,
    parse_nvidia_smi,
    probe,
)

FIXTURES = Path(__file__).parent / "fixtures"
MIB = 1024 * 1024


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_x86_cpuinfo_counts_cores_and_simd() -> None:
    cpu = parse_cpuinfo(fixture("cpuinfo_x86_xeon.txt"))
    assert cpu.model == "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz"
    assert (cpu.cores_physical, cpu.cores_logical) == (4, 8)
    for flag in ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni"):
        assert flag in cpu.simd
    assert "neon" not in cpu.simd
    assert "avx512_bf16" not in cpu.simd  # Cascade Lake has no BF16
    assert cpu.simd.index("avx") < cpu.simd.index("avx2") < cpu.simd.index("avx512f")


def test_arm_cpuinfo_names_core_and_board_and_maps_asimd_to_neon() -> None:
    cpu = parse_cpuinfo(fixture("cpuinfo_arm_rpi4.txt"))
    assert cpu.model == "ARM Cortex-A72 (Raspberry Pi 4 Model B Rev 1.1)"
    assert (cpu.cores_physical, cpu.cores_logical) == (4, 4)
    assert cpu.simd == ("neon",)


def test_arm_server_features_are_normalized() -> None:
    text = (
        "processor\t: 0\nFeatures\t: fp asimd asimdhp asimddp sve sve2 i8mm\n"
        "CPU implementer\t: 0x41\nCPU part\t: 0xd4f\n"
    )
    cpu = parse_cpuinfo(text)
    assert cpu.model == "ARM Neoverse-V2"
    assert cpu.simd == ("neon", "fp16", "dotprod", "i8mm", "sve", "sve2")


def test_32bit_arm_neon_flag() -> None:
    text = "processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\nFeatures\t: half vfp neon\n"
    assert parse_cpuinfo(text).simd == ("neon",)


def test_empty_cpuinfo_gives_safe_defaults() -> None:
    cpu = parse_cpuinfo("")
    assert (cpu.model, cpu.cores_physical, cpu.cores_logical, cpu.simd) == ("unknown", 1, 1, ())


def test_meminfo() -> None:
    assert parse_meminfo(fixture("meminfo.txt")) == 3884356 * 1024
    with pytest.raises(ValueError):
        parse_meminfo("MemFree: 12 kB\n")


def test_nvidia_smi_csv() -> None:
    gpus = parse_nvidia_smi(fixture("nvidia_smi.csv"))
    assert gpus == (
        GpuInfo("NVIDIA H100 80GB HBM3", "nvidia", 81559 * MIB, "550.54.15"),
        GpuInfo("NVIDIA L4", "nvidia", 23034 * MIB, "550.54.15"),
    )


def test_nvidia_smi_not_available_fields() -> None:
    (gpu,) = parse_nvidia_smi("NVIDIA GH200 480GB, [N/A], 560.35.03\n")
    assert gpu.memory_bytes is None and gpu.driver == "560.35.03"


def test_nvidia_proc_information() -> None:
    gpu = parse_nvidia_proc_information(
        fixture("nvidia_information.txt"), fixture("nvidia_version.txt")
    )
    assert gpu == GpuInfo("NVIDIA H100 80GB HBM3", "nvidia", None, "550.54.15")
    closed_module = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.129.03  Thu Oct 19 2023\n"
    assert parse_nvidia_proc_information("Model: \t T4\n", closed_module).driver == "535.129.03"


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("max 100000\n", None), ("150000 100000\n", 2), ("200000 100000", 2), ("5000 100000", 1)],
)
def test_cgroup_cpu_max(text: str, cpus: int | None) -> None:
    assert parse_cgroup_cpu_max(text) == cpus


def _fake_proc(root: Path, *, nvidia: bool = True) -> Path:
    proc = root / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "cpuinfo").write_text(fixture("cpuinfo_x86_xeon.txt"))
    (proc / "meminfo").write_text(fixture("meminfo.txt"))
    (proc / "self" / "cgroup").write_text("0::/system.slice/appliance.service\n")
    if nvidia:
        bus = proc / "driver" / "nvidia" / "gpus" / "0000:18:00.0"
        bus.mkdir(parents=True)
        (bus / "information").write_text(fixture("nvidia_information.txt"))
        (proc / "driver" / "nvidia" / "version").write_text(fixture("nvidia_version.txt"))
    return proc


def _fake_cgroup(root: Path, cpu_max: str) -> Path:
    cgroup = root / "cgroup"
    service = cgroup / "system.slice" / "appliance.service"
    service.mkdir(parents=True)
    (service / "cpu.max").write_text(cpu_max)
    (cgroup / "system.slice" / "cpu.max").write_text("max 100000\n")
    return cgroup


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_probe_on_fake_proc_uses_proc_nvidia_fallback(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path)
    cgroup = _fake_cgroup(tmp_path, "100000 100000\n")
    info = probe(lambda: True, proc_root=proc, nvidia_smi=None, cgroup_root=cgroup)
    assert info.cpu_model.startswith("Intel(R) Xeon(R) Silver 4214")
    assert (info.cores_physical, info.cores_logical) == (4, 8)
    assert info.cores_usable == 1  # the cgroup quota of one CPU binds
    assert "avx512f" in info.simd
    assert info.ram_bytes == 3884356 * 1024
    assert info.gpus == (GpuInfo("NVIDIA H100 80GB HBM3", "nvidia", None, "550.54.15"),)
    assert info.gpu_offload_supported is True
    json.dumps(info.to_dict())


def test_probe_prefers_nvidia_smi_and_falls_back_when_it_fails(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path)
    cgroup = _fake_cgroup(tmp_path, "max 100000\n")
    smi = _script(tmp_path / "nvidia-smi", f"cat '{FIXTURES / 'nvidia_smi.csv'}'\n")
    info = probe(proc_root=proc, nvidia_smi=smi, cgroup_root=cgroup)
    assert [g.name for g in info.gpus] == ["NVIDIA H100 80GB HBM3", "NVIDIA L4"]
    assert info.gpus[0].memory_bytes == 81559 * MIB
    assert info.cores_usable == len(os.sched_getaffinity(0))  # no quota

    broken = _script(tmp_path / "broken-smi", "echo 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    for tool in (broken, str(tmp_path / "missing-smi")):
        info = probe(proc_root=proc, nvidia_smi=tool, cgroup_root=cgroup)
        assert [g.memory_bytes for g in info.gpus] == [None]  # from /proc


def test_probe_without_nvidia_anything_has_no_gpus(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, nvidia=False)
    info = probe(proc_root=proc, nvidia_smi=str(tmp_path / "absent"), cgroup_root=tmp_path)
    assert info.gpus == ()
    assert info.gpu_offload_supported is False


def test_failing_offload_check_means_no_offload(tmp_path: Path) -> None:
    def explode() -> bool:
        raise OSError("libggml-cuda.so: cannot open shared object file")

    info = probe(explode, proc_root=_fake_proc(tmp_path), nvidia_smi=None, cgroup_root=tmp_path)
    assert info.gpu_offload_supported is False


def test_real_probe_on_this_machine() -> None:
    info = probe()
    assert info.cores_logical >= 1 and info.cores_physical >= 1
    assert 1 <= info.cores_usable <= (os.cpu_count() or 1)
    assert info.ram_bytes > 0
    assert info.arch and info.cpu_model
    assert info.gpu_offload_supported is False  # no check was passed
    json.dumps(info.to_dict())
