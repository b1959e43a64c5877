"""What ``appliance hardware`` prints: the probe results and the chosen profile.

Kept apart from the CLI so the same text and JSON can be logged at daemon start and shown in
support bundles without going through argument parsing.
"""

from __future__ import annotations

from typing import Any

from hardware.probe import GpuInfo, HardwareInfo
from hardware.profile import GIB, Profile

__all__ = ["format_report", "report_dict"]


def _gpu_line(gpu: GpuInfo) -> str:
    parts = [gpu.name, gpu.vendor]
    if gpu.memory_bytes is not None:
        parts.append(f"{gpu.memory_bytes / GIB:.1f} GiB")
    if gpu.driver is not None:
        parts.append(f"driver {gpu.driver}")
    return ", ".join(parts)


def _aligned(rows: list[tuple[str, str]], width: int) -> list[str]:
    return [f"  {label + ':':<{width}} {value}" for label, value in rows]


def format_report(info: HardwareInfo, profile: Profile) -> str:
    """A readable block, labels aligned, hardware first and then the profile with its reason."""
    hardware: list[tuple[str, str]] = [
        ("CPU", info.cpu_model),
        ("Architecture", info.arch),
        ("Cores", f"{info.cores_physical} physical, {info.cores_logical} logical"),
        ("Usable cores (affinity, cgroup)", str(info.cores_usable)),
        ("SIMD", " ".join(info.simd) if info.simd else "none detected"),
        ("RAM", f"{info.ram_bytes / GIB:.1f} GiB"),
    ]
    if info.gpus:
        for index, gpu in enumerate(info.gpus):
            hardware.append((f"GPU {index}", _gpu_line(gpu)))
    else:
        hardware.append(("GPUs", "none found"))
    hardware.append(
        ("GPU offload in this llama.cpp build", "yes" if info.gpu_offload_supported else "no")
    )
    layers = {-1: "all", 0: "none (CPU only)"}.get(profile.gpu_layers, str(profile.gpu_layers))
    chosen: list[tuple[str, str]] = [
        ("Profile", f"{profile.name}: {profile.description}"),
        ("Threads per context", str(profile.threads)),
        ("Pool size (contexts)", str(profile.pool_size)),
        ("GPU layers", layers),
        ("Context length", str(profile.context_length)),
        ("Batch size", str(profile.batch_size)),
        ("Chat model", profile.chat_model),
        ("Reason", profile.reason),
    ]
    width = max(len(label) for label, _ in hardware + chosen) + 1
    lines = ["Hardware", *_aligned(hardware, width), "", "Profile", *_aligned(chosen, width)]
    return "\n".join(lines)


def report_dict(info: HardwareInfo, profile: Profile) -> dict[str, Any]:
    """The same facts as ``format_report``, for ``--json``."""
    return {"hardware": info.to_dict(), "profile": profile.to_dict()}
