"""Hardware probing and profile choice: how many threads, contexts and GPU layers this box gets.

Standard library only, so every other package may depend on it. Nothing runs at import time;
call ``probe()`` and then ``choose_profile()``.
"""

from hardware.probe import (
    CpuInfo,
    GpuInfo,
    HardwareInfo,
    parse_cgroup_cpu_max,
    parse_cpuinfo,
    parse_meminfo,
    parse_nvidia_proc_information,
    parse_nvidia_smi,
    probe,
)
from hardware.profile import (
    AUTO,
    MatchRule,
    Profile,
    ProfileError,
    ProfileSettings,
    ProfileSpec,
    choose_profile,
    default_profiles_dir,
    load_profiles,
)
from hardware.report import format_report, report_dict

__all__ = [
    "AUTO",
    "CpuInfo",
    "GpuInfo",
    "HardwareInfo",
    "MatchRule",
    "Profile",
    "ProfileError",
    "ProfileSettings",
    "ProfileSpec",
    "choose_profile",
    "default_profiles_dir",
    "format_report",
    "load_profiles",
    "parse_cgroup_cpu_max",
    "parse_cpuinfo",
    "parse_meminfo",
    "parse_nvidia_proc_information",
    "parse_nvidia_smi",
    "probe",
    "report_dict",
]
