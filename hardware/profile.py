"""Choosing llama.cpp settings for this box from the profile files in ``profiles/``.

Profiles are data, not code, so a site can see (and the fleet can ship) exactly which settings a
class of box gets. Each file names what it matches and what it sets; the highest-priority match
wins and ``minimal.toml`` matches anything, so every box gets a profile. The chosen ``Profile``
carries a one-sentence reason, because "why is my box using 2 threads?" is the first question an
operator asks.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from hardware.probe import HardwareInfo

__all__ = [
    "AUTO",
    "MatchRule",
    "Profile",
    "ProfileError",
    "ProfileSettings",
    "ProfileSpec",
    "choose_profile",
    "default_profiles_dir",
    "load_profiles",
]

AUTO: Literal["auto"] = "auto"
Auto = Literal["auto"]

GIB = 1024**3
# pool_size = "auto": one context per this many usable cores. CPU decode is memory-bound, so a
# context stops getting faster past a few threads; more contexts serve concurrent requests.
CORES_PER_CONTEXT = 4
MAX_AUTO_POOL = 8


class ProfileError(ValueError):
    """A profile file is invalid, or no profile matches; the message names the file and key."""


@dataclass(frozen=True)
class MatchRule:
    """Which boxes a profile is for; every rule that is set must hold. RAM and GPU memory are
    in GiB, compared with what the kernel reports (a "4 GB" board shows about 3.7 GiB)."""

    arch: tuple[str, ...] | None = None
    min_cores: int | None = None
    max_cores: int | None = None
    min_ram_gb: float | None = None
    max_ram_gb: float | None = None
    requires_gpu: bool = False
    min_gpu_memory_gb: float | None = None
    requires_simd: tuple[str, ...] = ()

    def mismatches(self, info: HardwareInfo) -> list[str]:
        """Why this rule does not hold for ``info``; empty when it matches."""
        why: list[str] = []
        ram_gib = info.ram_bytes / GIB
        if self.arch is not None and info.arch not in self.arch:
            why.append(f"arch {info.arch} is not {' or '.join(self.arch)}")
        if self.min_cores is not None and info.cores_usable < self.min_cores:
            why.append(f"needs at least {self.min_cores} usable cores")
        if self.max_cores is not None and info.cores_usable > self.max_cores:
            why.append(f"is for at most {self.max_cores} usable cores")
        if self.min_ram_gb is not None and ram_gib < self.min_ram_gb:
            why.append(f"needs at least {self.min_ram_gb:g} GiB RAM")
        if self.max_ram_gb is not None and ram_gib > self.max_ram_gb:
            why.append(f"is for at most {self.max_ram_gb:g} GiB RAM")
        missing = [flag for flag in self.requires_simd if flag not in info.simd]
        if missing:
            why.append(f"CPU lacks {', '.join(missing)}")
        if self.requires_gpu:
            why.extend(self._gpu_mismatches(info))
        return why

    def _gpu_mismatches(self, info: HardwareInfo) -> list[str]:
        if not info.gpus:
            return ["needs a GPU"]
        if not info.gpu_offload_supported:
            return ["this llama.cpp build cannot offload to the GPU"]
        known = [g.memory_bytes for g in info.gpus if g.memory_bytes is not None]
        # Unknown memory (the /proc fallback) passes: refusing would leave a real GPU idle.
        if (
            self.min_gpu_memory_gb is not None
            and known
            and max(known) / GIB < self.min_gpu_memory_gb
        ):
            return [f"needs a GPU with at least {self.min_gpu_memory_gb:g} GiB"]
        return []


@dataclass(frozen=True)
class ProfileSettings:
    """Settings as written in the file; "auto" is resolved per box by ``choose_profile``."""

    threads: int | Auto
    gpu_layers: int
    context_length: int
    pool_size: int | Auto
    chat_model: str
    batch_size: int


@dataclass(frozen=True)
class ProfileSpec:
    """One profile file, validated."""

    name: str
    description: str
    priority: int
    match: MatchRule
    settings: ProfileSettings
    source: Path


@dataclass(frozen=True)
class Profile:
    """The settings this box runs with, every value concrete, and why they were chosen."""

    name: str
    description: str
    threads: int
    gpu_layers: int
    context_length: int
    pool_size: int
    batch_size: int
    chat_model: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Table:
    """Typed reads from one TOML table; errors name the file and the dotted key."""

    def __init__(self, data: Any, file: str, prefix: str, allowed: tuple[str, ...]) -> None:
        self.file, self.prefix = file, prefix
        if not isinstance(data, dict):
            raise ProfileError(f"{file}: {prefix.rstrip('.')}: expected a table")
        self.data: dict[str, Any] = data
        for key in data:
            if key not in allowed:
                raise self.error(key, f"unknown key (allowed: {', '.join(allowed)})")

    def error(self, key: str, message: str) -> ProfileError:
        return ProfileError(f"{self.file}: {self.prefix}{key}: {message}")

    def _typed(self, key: str, kinds: tuple[type, ...], what: str) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        # bool is an int in Python, but `threads = true` is a mistake, not 1.
        if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
            raise self.error(key, f"expected {what}, got {type(value).__name__} {value!r}")
        return value

    def required(self, key: str) -> Any:
        if key not in self.data:
            raise self.error(key, "missing")
        return self.data[key]

    def string(self, key: str) -> str:
        self.required(key)
        value: str = self._typed(key, (str,), "a string")
        if not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def integer(self, key: str, minimum: int | None = None) -> int | None:
        value: int | None = self._typed(key, (int,), "an integer")
        if value is not None and minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def required_integer(self, key: str, minimum: int | None = None) -> int:
        self.required(key)
        value = self.integer(key, minimum)
        assert value is not None
        return value

    def integer_or_auto(self, key: str, minimum: int) -> int | Auto:
        if self.required(key) == AUTO:
            return AUTO
        value = self._typed(key, (int,), 'an integer or "auto"')
        if value < minimum:
            raise self.error(key, f'must be at least {minimum} or "auto", got {value}')
        return int(value)

    def number(self, key: str) -> float | None:
        value = self._typed(key, (int, float), "a number")
        if value is not None and value < 0:
            raise self.error(key, f"must not be negative, got {value}")
        return None if value is None else float(value)

    def boolean(self, key: str) -> bool:
        value = self._typed(key, (bool,), "true or false")
        return bool(value)

    def strings(self, key: str) -> tuple[str, ...] | None:
        value = self._typed(key, (list,), "a list of strings")
        if value is None:
            return None
        if not all(isinstance(item, str) for item in value):
            raise self.error(key, "expected a list of strings")
        return tuple(value)


_TOP_KEYS = ("name", "description", "priority", "match", "settings")
_MATCH_KEYS = (
    "arch", "min_cores", "max_cores", "min_ram_gb", "max_ram_gb",
    "requires_gpu", "min_gpu_memory_gb", "requires_simd",
)  # fmt: skip
_SETTINGS_KEYS = (
    "threads", "gpu_layers", "context_length", "pool_size", "chat_model", "batch_size",
)  # fmt: skip


def _parse_spec(path: Path) -> ProfileSpec:
    file = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{file}: cannot read: {exc}") from exc
    top = _Table(data, file, "", _TOP_KEYS)
    name = top.string("name")
    if name != path.stem:
        raise top.error("name", f"{name!r} must match the file name {path.stem!r}")
    m = _Table(data.get("match", {}), file, "match.", _MATCH_KEYS)
    match = MatchRule(
        arch=m.strings("arch"),
        min_cores=m.integer("min_cores", minimum=1),
        max_cores=m.integer("max_cores", minimum=1),
        min_ram_gb=m.number("min_ram_gb"),
        max_ram_gb=m.number("max_ram_gb"),
        requires_gpu=m.boolean("requires_gpu"),
        min_gpu_memory_gb=m.number("min_gpu_memory_gb"),
        requires_simd=m.strings("requires_simd") or (),
    )
    if match.min_gpu_memory_gb is not None and not match.requires_gpu:
        raise m.error("min_gpu_memory_gb", "only meaningful with requires_gpu = true")
    s = _Table(top.required("settings"), file, "settings.", _SETTINGS_KEYS)
    settings = ProfileSettings(
        threads=s.integer_or_auto("threads", minimum=1),
        gpu_layers=s.required_integer("gpu_layers", minimum=-1),
        context_length=s.required_integer("context_length", minimum=128),
        pool_size=s.integer_or_auto("pool_size", minimum=1),
        chat_model=s.string("chat_model"),
        batch_size=s.required_integer("batch_size", minimum=1),
    )
    # Offloading layers on a box the rule did not check for a usable GPU would fail at load.
    if settings.gpu_layers != 0 and not match.requires_gpu:
        raise s.error("gpu_layers", "must be 0 unless match.requires_gpu = true")
    return ProfileSpec(
        name=name,
        description=top.string("description"),
        priority=top.required_integer("priority"),
        match=match,
        settings=settings,
        source=path,
    )


def default_profiles_dir() -> Path:
    """The profiles shipped inside this package (listed as package data in pyproject.toml)."""
    return Path(__file__).resolve().parent / "profiles"


def load_profiles(directory: Path | None = None) -> list[ProfileSpec]:
    """Read and validate every ``*.toml`` in ``directory``, highest priority first."""
    directory = directory if directory is not None else default_profiles_dir()
    specs = [_parse_spec(path) for path in sorted(directory.glob("*.toml"))]
    if not specs:
        raise ProfileError(f"{directory}: no profile files (*.toml)")
    return sorted(specs, key=lambda spec: (-spec.priority, spec.name))


def _describe(info: HardwareInfo) -> str:
    cores = f"{info.cores_usable} usable core{'s' if info.cores_usable != 1 else ''}"
    facts = f"{info.arch}, {cores}, {info.ram_bytes / GIB:.1f} GiB RAM"
    if not info.gpus:
        return f"{facts}, no GPU"
    count = len(info.gpus)
    gpus = f"{count} GPU{'s' if count > 1 else ''} ({', '.join(g.name for g in info.gpus)})"
    if info.gpu_offload_supported:
        return f"{facts}, {gpus} with offload"
    return f"{facts}, {gpus} that this llama.cpp build cannot offload to"


def _resolve(spec: ProfileSpec, info: HardwareInfo, skipped: list[str]) -> Profile:
    s = spec.settings
    details = list(skipped)
    cores = info.cores_usable
    if s.pool_size == AUTO:
        pool = max(1, min(MAX_AUTO_POOL, cores // CORES_PER_CONTEXT))
        details.append(f"pool {pool} = {cores} usable cores / {CORES_PER_CONTEXT}")
    else:
        pool = s.pool_size
    if s.threads == AUTO:
        threads = max(1, cores // pool)
        details.append(f"threads {threads} = {cores} usable cores / pool {pool}")
    else:
        threads = s.threads
        details.append(f"threads {threads} as set")
    if s.gpu_layers != 0:
        layers = "all" if s.gpu_layers == -1 else str(s.gpu_layers)
        details.append(f"{layers} layers on the GPU")
    return Profile(
        name=spec.name,
        description=spec.description,
        threads=threads,
        gpu_layers=s.gpu_layers,
        context_length=s.context_length,
        pool_size=pool,
        batch_size=s.batch_size,
        chat_model=s.chat_model,
        reason=f"{_describe(info)}: {spec.name} ({'; '.join(details)})",
    )


def choose_profile(info: HardwareInfo, specs: list[ProfileSpec] | None = None) -> Profile:
    """The highest-priority profile whose rule holds for ``info``, with "auto" resolved.

    The reason names GPU profiles that were passed over on a box that has a GPU, since a GPU
    that is not used is the surprise an operator needs explained.
    """
    ordered = sorted(
        specs if specs is not None else load_profiles(), key=lambda s: (-s.priority, s.name)
    )
    skipped: list[str] = []
    for spec in ordered:
        why = spec.match.mismatches(info)
        if not why:
            return _resolve(spec, info, skipped)
        if spec.match.requires_gpu and info.gpus:
            skipped.append(f"not {spec.name}: {', '.join(why)}")
    raise ProfileError(f"no profile matches this box ({_describe(info)})")
