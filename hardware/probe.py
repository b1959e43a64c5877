"""What this box can do: CPU, SIMD, RAM, GPUs, and whether llama.cpp can offload to a GPU.

The parsers are pure functions over the text of ``/proc`` files and tool output, so tests can
feed them fixture text from machines we do not have. ``probe`` is the only function that touches
the system; it never raises because a tool or a file is missing: a box without ``nvidia-smi`` is
simply a box without NVIDIA GPUs.
"""

from __future__ import annotations

import math
import os
import platform
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CpuInfo",
    "GpuInfo",
    "HardwareInfo",
    "parse_cgroup_cpu_max",
    "parse_cpuinfo",
    "parse_meminfo",
    "parse_nvidia_proc_information",
    "parse_nvidia_smi",
    "probe",
]

NVIDIA_SMI_QUERY = "--query-gpu=name,memory.total,driver_version"
NVIDIA_SMI_TIMEOUT_S = 5.0

# /proc/cpuinfo flag -> normalized name. Only flags that matter to llama.cpp kernels are kept,
# in this order, so reports stay short and comparable across boxes.
_SIMD_FLAGS: tuple[tuple[str, str], ...] = (
    ("sse4_2", "sse4_2"),
    ("avx", "avx"),
    ("avx2", "avx2"),
    ("fma", "fma"),
    ("f16c", "f16c"),
    ("avx_vnni", "avx_vnni"),
    ("avx512f", "avx512f"),
    ("avx512bw", "avx512bw"),
    ("avx512vl", "avx512vl"),
    ("avx512_vnni", "avx512_vnni"),
    ("avx512_bf16", "avx512_bf16"),
    ("amx_int8", "amx_int8"),
    # ARM: the kernel calls AArch64 NEON "asimd"; 32-bit kernels say "neon".
    ("asimd", "neon"),
    ("neon", "neon"),
    ("asimdhp", "fp16"),
    ("asimddp", "dotprod"),
    ("i8mm", "i8mm"),
    ("sve", "sve"),
    ("sve2", "sve2"),
)

# ARM "CPU part" codes (implementer 0x41, Arm Ltd.), because ARM kernels print no model name.
_ARM_PARTS: dict[str, str] = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd49": "Neoverse-N2",
    "0xd4f": "Neoverse-V2",
}


@dataclass(frozen=True)
class GpuInfo:
    """One GPU. Memory and driver are None when the only source was /proc, which omits them."""

    name: str
    vendor: str
    memory_bytes: int | None
    driver: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vendor": self.vendor,
            "memory_bytes": self.memory_bytes,
            "driver": self.driver,
        }


@dataclass(frozen=True)
class HardwareInfo:
    """Everything the profile chooser looks at; built by ``probe`` or by hand in tests."""

    cpu_model: str
    arch: str
    cores_physical: int
    cores_logical: int
    cores_usable: int
    simd: tuple[str, ...]
    ram_bytes: int
    gpus: tuple[GpuInfo, ...]
    gpu_offload_supported: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``appliance hardware --json``."""
        return {
            "cpu_model": self.cpu_model,
            "arch": self.arch,
            "cores_physical": self.cores_physical,
            "cores_logical": self.cores_logical,
            "cores_usable": self.cores_usable,
            "simd": list(self.simd),
            "ram_bytes": self.ram_bytes,
            "gpus": [gpu.to_dict() for gpu in self.gpus],
            "gpu_offload_supported": self.gpu_offload_supported,
        }


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo says, before affinity and cgroup limits are applied."""

    model: str
    cores_physical: int
    cores_logical: int
    simd: tuple[str, ...]


def _blocks(text: str) -> list[dict[str, str]]:
    """Split cpuinfo into its blank-line separated ``key : value`` blocks."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current.setdefault(key.strip().lower(), value.strip())
    if current:
        blocks.append(current)
    return blocks


def _arm_model(fields: dict[str, str], board: str | None) -> str | None:
    part = fields.get("cpu part", "").lower()
    if fields.get("cpu implementer", "").lower() == "0x41" and part in _ARM_PARTS:
        core = f"ARM {_ARM_PARTS[part]}"
    elif part:
        core = f"ARM CPU part {part}"
    else:
        return board
    return f"{core} ({board})" if board else core


def parse_cpuinfo(text: str) -> CpuInfo:
    """Parse /proc/cpuinfo of x86 or ARM.

    Physical cores come from distinct (physical id, core id) pairs, which x86 prints and ARM
    does not; without them every logical processor counts as a core (ARM boards have no SMT).
    """
    blocks = _blocks(text)
    processors = [b for b in blocks if "processor" in b and b["processor"].isdigit()]
    # Board-wide fields (Hardware, Model on a Raspberry Pi) sit in a block of their own.
    merged: dict[str, str] = {}
    for block in blocks:
        for key, value in block.items():
            merged.setdefault(key, value)
    logical = max(len(processors), 1)
    pairs = {(b.get("physical id"), b.get("core id")) for b in processors if "core id" in b}
    physical = len(pairs) if pairs else logical
    board = merged.get("model") if not merged.get("model", "").isdigit() else None
    model = merged.get("model name") or _arm_model(merged, board) or merged.get("hardware")
    flags = set((merged.get("flags") or merged.get("features") or "").split())
    simd: list[str] = []
    for flag, name in _SIMD_FLAGS:
        if flag in flags and name not in simd:
            simd.append(name)
    return CpuInfo(model or "unknown", physical, logical, tuple(simd))


def parse_meminfo(text: str) -> int:
    """Total RAM in bytes from /proc/meminfo (MemTotal is in kiB despite saying kB)."""
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    if match is None:
        raise ValueError("MemTotal not found in meminfo")
    return int(match.group(1)) * 1024


def _optional(value: str) -> str | None:
    value = value.strip()
    return None if not value or value.startswith("[") or value == "N/A" else value


def parse_nvidia_smi(text: str) -> tuple[GpuInfo, ...]:
    """Parse ``--format=csv,noheader,nounits`` output: name, memory.total (MiB), driver."""
    gpus: list[GpuInfo] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        name = fields[0]
        memory = _optional(fields[1]) if len(fields) > 1 else None
        driver = _optional(fields[2]) if len(fields) > 2 else None
        memory_bytes = int(float(memory) * 1024 * 1024) if memory else None
        gpus.append(GpuInfo(name, "nvidia", memory_bytes, driver))
    return tuple(gpus)


def parse_nvidia_proc_information(text: str, version_text: str | None = None) -> GpuInfo:
    """Parse /proc/driver/nvidia/gpus/<bus>/information, with the driver from .../version.

    This is the fallback when nvidia-smi is missing (minimal images ship the kernel module
    without the tools); it names the GPU but cannot tell its memory.
    """
    match = re.search(r"^Model:\s*(.+)$", text, re.MULTILINE)
    name = match.group(1).strip() if match else "NVIDIA GPU"
    driver = None
    if version_text:
        found = re.search(r"NVRM version:.*?\s(\d+\.\d+(?:\.\d+)?)\s", version_text)
        driver = found.group(1) if found else None
    return GpuInfo(name, "nvidia", None, driver)


def parse_cgroup_cpu_max(text: str) -> int | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` ("quota period"), rounded up; None if unlimited."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    quota, period = int(parts[0]), int(parts[1])
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _cgroup_cpu_limit(proc_root: Path, cgroup_root: Path) -> int | None:
    """Tightest cpu.max from this process's cgroup v2 up to the root (a parent limit binds)."""
    text = _read(proc_root / "self" / "cgroup")
    if text is None:
        return None
    relative = next((ln[3:] for ln in text.splitlines() if ln.startswith("0::")), None)
    if relative is None:
        return None
    directory = cgroup_root / relative.strip().lstrip("/")
    limits: list[int] = []
    while True:
        raw = _read(directory / "cpu.max")
        try:
            limit = parse_cgroup_cpu_max(raw) if raw else None
        except ValueError:
            limit = None
        if limit is not None:
            limits.append(limit)
        if directory == cgroup_root or directory.parent == directory:
            break
        directory = directory.parent
    return min(limits) if limits else None


def _affinity_count() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _usable_cores(logical: int, proc_root: Path, cgroup_root: Path) -> int:
    usable = _affinity_count() or os.cpu_count() or logical
    limit = _cgroup_cpu_limit(proc_root, cgroup_root)
    return max(1, min(usable, limit) if limit is not None else usable)


def _nvidia_gpus(proc_root: Path, nvidia_smi: str | None) -> tuple[GpuInfo, ...]:
    if nvidia_smi is not None:
        try:
            done = subprocess.run(
                [nvidia_smi, NVIDIA_SMI_QUERY, "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=NVIDIA_SMI_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            done = None
        if done is not None and done.returncode == 0:
            try:
                gpus = parse_nvidia_smi(done.stdout)
            except ValueError:
                gpus = ()
            if gpus:
                return gpus
    driver_dir = proc_root / "driver" / "nvidia"
    try:
        bus_dirs = sorted(p for p in (driver_dir / "gpus").iterdir() if p.is_dir())
    except OSError:
        return ()
    version = _read(driver_dir / "version")
    found: list[GpuInfo] = []
    for bus_dir in bus_dirs:
        information = _read(bus_dir / "information")
        if information is not None:
            found.append(parse_nvidia_proc_information(information, version))
    return tuple(found)


def _arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine) or "unknown"


def probe(
    offload_check: Callable[[], bool] | None = None,
    *,
    proc_root: Path = Path("/proc"),
    nvidia_smi: str | None = "nvidia-smi",
    cgroup_root: Path = Path("/sys/fs/cgroup"),
) -> HardwareInfo:
    """Look at this box. ``offload_check`` is asked whether the llama.cpp build can use a GPU
    (it is passed in because this package must not import llama.cpp); if it fails, the answer
    is no, since a wrong "yes" would pick GPU settings that crash at model load.
    """
    cpu = parse_cpuinfo(_read(proc_root / "cpuinfo") or "")
    meminfo = _read(proc_root / "meminfo")
    try:
        ram = parse_meminfo(meminfo) if meminfo is not None else 0
    except ValueError:
        ram = 0
    offload = False
    if offload_check is not None:
        try:
            offload = bool(offload_check())
        except Exception:  # noqa: BLE001 - any failure of the check means "cannot offload"
            offload = False
    return HardwareInfo(
        cpu_model=cpu.model,
        arch=_arch(),
        cores_physical=cpu.cores_physical,
        cores_logical=cpu.cores_logical,
        cores_usable=_usable_cores(cpu.cores_logical, proc_root, cgroup_root),
        simd=cpu.simd,
        ram_bytes=ram,
        gpus=_nvidia_gpus(proc_root, nvidia_smi),
        gpu_offload_supported=offload,
    )
