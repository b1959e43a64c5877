"""The routing policy: which zones each sensitivity level may reach, what to do when a request
asks for a forbidden one, and overrides per tenant, department and app.

One schema serves three sources, in this order of precedence:

1. the policy central IT signed and the sync agent applied (its last known-good copy survives
   restarts; ``sync``);
2. a local policy file named by ``policy_file`` in the config (a box that was never enrolled);
3. the ``[policy]`` section of the config (embedded defaults when absent).

The schema is documented in the README ("Policy file"); ``appliance policy check FILE``
validates a file with the same rules the daemon and the sync agent use, and every error names
the field (``overrides[1].on_forbidden.internal``).

An override matches a key when every one of its ``tenant``/``department``/``app`` fields
names the key's entity (by name or id). Matching overrides apply from the least specific
(tenant) to the most specific (app); each replaces only the levels and fields it gives.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

from appliance.validation import parse_toml

Zone = Literal["device", "site", "cloud"]
Zones = tuple[Zone, ...]
ForbiddenAction = Literal["reroute", "block", "redact"]
Level = Literal["public", "internal", "confidential", "restricted"]
LEVELS: tuple[Level, ...] = ("public", "internal", "confidential", "restricted")


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    pass


class ZonePolicyConfig(_Section, frozen=True):
    """Which zones each sensitivity level may reach. A request whose level may not reach the
    zone of the model it asked for is refused (403 ``sensitivity_policy``) before any upstream
    call unless ``on_forbidden`` says otherwise: the appliance fails closed. The defaults keep
    personal data, secrets and health information on the premises."""

    public: Zones = ("device", "site", "cloud")
    internal: Zones = ("device", "site", "cloud")
    confidential: Zones = ("device", "site")
    restricted: Zones = ("device", "site")


class OnForbiddenConfig(_Section, frozen=True):
    """What to do, per level, when a request may not reach the zone of the model it asked
    for. Unset: ``reroute`` for an alias (take its next allowed candidate), ``block`` for a
    concrete model. ``reroute`` of a concrete model goes to that level's ``fallback_model``
    and blocks when there is none. ``redact`` sends the request to the forbidden zone with
    every identifier replaced by a typed placeholder, if the redacted text's own level may
    reach that zone (otherwise it blocks)."""

    public: ForbiddenAction | None = None
    internal: ForbiddenAction | None = None
    confidential: ForbiddenAction | None = None
    restricted: ForbiddenAction | None = None


class FallbackModelConfig(_Section, frozen=True):
    """Per level, the model a rerouted request for a concrete model goes to."""

    public: str | None = None
    internal: str | None = None
    confidential: str | None = None
    restricted: str | None = None


class PartialZones(_Section, frozen=True):
    """An override's zones: only the levels given replace the base policy's."""

    public: Zones | None = None
    internal: Zones | None = None
    confidential: Zones | None = None
    restricted: Zones | None = None


class PolicyOverride(_Section, frozen=True):
    """Policy for the keys of one tenant, department or app (names or ids)."""

    tenant: str | None = None
    department: str | None = None
    app: str | None = None
    allowed_zones: PartialZones = PartialZones()
    on_forbidden: OnForbiddenConfig = OnForbiddenConfig()
    fallback_model: FallbackModelConfig = FallbackModelConfig()
    #: The classification its requests are declared with when they send none
    #: (``x-data-classification`` still raises it; neither can lower what was detected).
    classification: Level | None = None
    #: The latency budget when a request sends no ``x-appliance-max-latency-ms``.
    max_latency_ms: int | None = msgspec.field(default=None)

    def __post_init__(self) -> None:
        if self.tenant is None and self.department is None and self.app is None:
            raise ValueError("name at least one of `tenant`, `department`, `app`")
        if self.max_latency_ms is not None and self.max_latency_ms < 1:
            raise ValueError("`max_latency_ms`: must be >= 1")

    @property
    def specificity(self) -> int:
        return 3 if self.app is not None else 2 if self.department is not None else 1


class PolicyConfig(_Section, frozen=True):
    """A whole policy (the ``[policy]`` config section, a policy file, a signed bundle)."""

    #: Increases with every published version; the sync agent refuses an older one.
    version: int = msgspec.field(default=0)
    #: Free text shown by ``appliance policy show`` and in the fleet view.
    description: str = ""
    allowed_zones: ZonePolicyConfig = ZonePolicyConfig()
    on_forbidden: OnForbiddenConfig = OnForbiddenConfig()
    fallback_model: FallbackModelConfig = FallbackModelConfig()
    overrides: list[PolicyOverride] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.version < 0:
            raise ValueError("`version`: must be >= 0")


class PolicyError(Exception):
    """A policy cannot be used; the message names the source and the field."""


def parse_policy(text: str | bytes, source: str = "<policy>") -> PolicyConfig:
    """Validate a policy file's TOML. ``PolicyError`` names the field."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"{source}: not valid TOML: {exc}") from exc
    return parse_toml(text, PolicyConfig, source, PolicyError, noun="field")


def load_policy(path: Path) -> PolicyConfig:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy: {exc.strerror}") from exc
    return parse_policy(text, str(path))


def policy_to_toml_dict(policy: PolicyConfig) -> dict[str, object]:
    """The policy as plain data (``appliance policy show --json``)."""
    return msgspec.to_builtins(policy)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    """The policy for one key, overrides applied."""

    allowed_zones: dict[str, Zones]
    on_forbidden: dict[str, ForbiddenAction | None]
    fallback_model: dict[str, str | None]
    classification: str | None = None
    max_latency_ms: int | None = None

    def zones(self, level: str) -> Zones:
        return self.allowed_zones[level]


def _effective(policy: PolicyConfig, matching: list[PolicyOverride]) -> EffectivePolicy:
    zones: dict[str, Zones] = {level: getattr(policy.allowed_zones, level) for level in LEVELS}
    actions: dict[str, ForbiddenAction | None] = {
        level: getattr(policy.on_forbidden, level) for level in LEVELS}
    fallback: dict[str, str | None] = {
        level: getattr(policy.fallback_model, level) for level in LEVELS}
    classification: str | None = None
    latency: int | None = None
    for override in sorted(matching, key=lambda o: o.specificity):
        for level in LEVELS:
            if (z := getattr(override.allowed_zones, level)) is not None:
                zones[level] = z
            if (a := getattr(override.on_forbidden, level)) is not None:
                actions[level] = a
            if (f := getattr(override.fallback_model, level)) is not None:
                fallback[level] = f
        classification = override.classification or classification
        latency = override.max_latency_ms or latency
    return EffectivePolicy(zones, actions, fallback, classification, latency)


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a key belongs to: ids and names of its tenant, department and app."""

    tenant: tuple[str | None, str | None] = (None, None)
    department: tuple[str | None, str | None] = (None, None)
    app: tuple[str | None, str | None] = (None, None)


OwnerLookup = Callable[[str | None, str | None, str | None], Owner]


def _matches(override: PolicyOverride, owner: Owner) -> bool:
    for wanted, have in ((override.tenant, owner.tenant), (override.department,
                                                            owner.department),
                         (override.app, owner.app)):
        if wanted is not None and wanted not in have:
            return False
    return True


class PolicyHolder:
    """The policy in force and where it came from; ``swap`` replaces it atomically (one
    attribute assignment, so a request sees the old or the new policy, never a mix).

    ``for_key`` resolves overrides per (tenant, department, app) and caches the result for
    ``cache_seconds`` (renaming an entity takes effect within that time)."""

    def __init__(self, policy: PolicyConfig, source: str = "config",
                 owner_lookup: OwnerLookup | None = None, cache_seconds: float = 30.0) -> None:
        self._state: tuple[PolicyConfig, str, EffectivePolicy] = (
            policy, source, _effective(policy, []))
        self.owner_lookup = owner_lookup
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str | None, str | None, str | None],
                          tuple[float, EffectivePolicy]] = {}
        self._lock = threading.Lock()

    @property
    def policy(self) -> PolicyConfig:
        return self._state[0]

    @property
    def source(self) -> str:
        return self._state[1]

    @property
    def version(self) -> int:
        return self._state[0].version

    def swap(self, policy: PolicyConfig, source: str) -> None:
        with self._lock:
            self._state = (policy, source, _effective(policy, []))
            self._cache = {}

    def base(self) -> EffectivePolicy:
        return self._state[2]

    def for_owner(self, tenant_id: str | None, department_id: str | None,
                  app_id: str | None) -> EffectivePolicy:
        policy, _, base = self._state
        if not policy.overrides:
            return base
        cache_key = (tenant_id, department_id, app_id)
        now = time.monotonic()
        cached = self._cache.get(cache_key)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        owner = (self.owner_lookup(tenant_id, department_id, app_id)
                 if self.owner_lookup is not None else
                 Owner((tenant_id, None), (department_id, None), (app_id, None)))
        effective = _effective(policy, [o for o in policy.overrides if _matches(o, owner)])
        if self._state[0] is policy:  # not swapped meanwhile
            self._cache[cache_key] = (now, effective)
        return effective
