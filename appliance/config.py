"""Configuration: one TOML file, validated strictly at start.

Unknown keys and wrong types are refused with a message naming the key (``server.port``), so a
typo in ``appliance.toml`` stops the daemon instead of being silently ignored. Every key has an
embedded default: with no file at all the appliance runs on the local model, SQLite and
127.0.0.1:8080.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from appliance.audit.config import AuditConfig
from appliance.classify.config import ClassifyConfig
from appliance.limits.config import LimitsPolicyConfig
from appliance.providers.config import ProviderConfig
from appliance.policy import PolicyConfig
from appliance.validation import parse_toml, read_toml
from sync.config import SyncConfig

DEFAULT_DATA_DIR = Path(".appliance")
DATA_DIR_ENV = "APPLIANCE_DATA_DIR"

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    pass


class ServerConfig(_Section, frozen=True):
    """The HTTP listener and process lifecycle."""

    host: str = "127.0.0.1"
    port: Port = 8080
    #: On SIGTERM, in-flight requests get this long to finish before they are cut.
    shutdown_grace_seconds: Seconds = 30.0
    #: Request bodies above this size get 413 before they are parsed.
    max_body_bytes: PositiveInt = 1024 * 1024
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = True


class LimitsConfig(_Section, frozen=True):
    """Per-request input limits, enforced before any model sees the request."""

    max_messages: PositiveInt = 256
    #: Upper bound for max_tokens / max_completion_tokens, and the default when a client
    #: gives none (capped further by what is left of the model's context).
    max_completion_tokens: PositiveInt = 4096
    #: 0 means the serving model's context length is the only bound.
    max_prompt_tokens: NonNegativeInt = 0
    max_stop_sequences: PositiveInt = 4
    max_embedding_inputs: PositiveInt = 256


class LocalModelsConfig(_Section, frozen=True):
    """The in-process llama.cpp model (zone ``device``) and the embedding model.

    Zero or empty values mean "take it from the hardware profile" (see ``appliance hardware``).
    """

    chat_model: str = ""
    embedding_model: str = "all-minilm-l6-v2"
    pool_size: NonNegativeInt = 0
    #: Requests allowed to wait for a free context; one more gets 503 with Retry-After.
    queue_size: NonNegativeInt = 16
    threads: NonNegativeInt = 0
    #: -1 offloads every layer to the GPU, 0 none; unset takes the hardware profile's value.
    gpu_layers: int | None = None
    context_length: NonNegativeInt = 0
    batch_size: NonNegativeInt = 0
    embedding_threads: PositiveInt = 1


class AliasConfig(_Section, frozen=True):
    """An alias in its long form; the short form ``name = ["a", "b"]`` is ``ordered``."""

    candidates: list[str]
    #: How the allowed, healthy candidates are ordered (``appliance.routing.Router.rank``):
    #: ``ordered`` as listed; ``fastest`` by measured time to first byte (unmeasured ones
    #: first, so they get measured); ``cheapest`` by ``limits_policy`` price; ``balanced`` by
    #: the sum of a candidate's places in the fastest and the cheapest orders.
    strategy: Literal["ordered", "fastest", "cheapest", "balanced"] = "ordered"

    def __post_init__(self) -> None:
        if not self.candidates:
            raise ValueError("`candidates`: list at least one model")


class ProviderHealthConfig(_Section, frozen=True):
    """Each provider's circuit breaker and latency measurements (``appliance.health``; in
    memory: a restart forgets them)."""

    #: Consecutive failures that open a closed circuit. (A connection failure to a cloud
    #: provider opens every cloud circuit at once: the uplink is down.)
    failure_threshold: PositiveInt = 3
    #: How long a circuit stays open the first time before it lets trial requests through
    #: (half-open); it doubles each time a trial fails, up to ``max_cooldown_seconds``.
    cooldown_seconds: Seconds = 10.0
    max_cooldown_seconds: Seconds = 300.0
    #: Trial requests a half-open circuit lets through at once (the others rank it last).
    half_open_requests: PositiveInt = 1
    #: Successful trials that close a half-open circuit.
    half_open_successes: PositiveInt = 1
    #: Samples per provider and model kept for the p50/p95 of time to first token and
    #: tokens/s (a ring: the oldest goes first).
    latency_samples: PositiveInt = 100
    #: Weight of the newest sample in the moving averages.
    latency_alpha: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.3

    def __post_init__(self) -> None:
        if self.max_cooldown_seconds < self.cooldown_seconds:
            raise ValueError("`max_cooldown_seconds` must be at least `cooldown_seconds`")


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    #: Overridden by ``--data-dir`` and by $APPLIANCE_DATA_DIR.
    data_dir: str | None = None
    server: ServerConfig = ServerConfig()
    limits: LimitsConfig = LimitsConfig()
    local: LocalModelsConfig = LocalModelsConfig()
    classify: ClassifyConfig = ClassifyConfig()
    #: The routing policy when no policy file is named and none was synced from central.
    policy: PolicyConfig = PolicyConfig()
    #: A policy file (same schema as ``[policy]``, see the README) that replaces the
    #: ``[policy]`` section; a policy applied by the sync agent takes precedence over both.
    policy_file: str | None = None
    #: Model servers on site and cloud providers, as ``[[providers]]`` tables.
    providers: list[ProviderConfig] = msgspec.field(default_factory=list)
    #: Model names clients may ask for that stand for candidate models in preference order:
    #: ``auto = ["gpt-4o-mini", "site-llama"]`` or ``[aliases.auto]`` with ``candidates`` and
    #: ``strategy``. Checked against the served models at start (``Router.check``).
    aliases: dict[str, list[str] | AliasConfig] = msgspec.field(default_factory=dict)
    provider_health: ProviderHealthConfig = ProviderHealthConfig()
    limits_policy: LimitsPolicyConfig = LimitsPolicyConfig()
    audit: AuditConfig = AuditConfig()
    sync: SyncConfig = SyncConfig()


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and key."""


def parse_config(text: str, source: str = "<config>") -> Config:
    return parse_toml(text, Config, source, ConfigError)


def load_config(path: Path | None) -> Config:
    """Read and validate ``path``; ``None`` gives the embedded defaults."""
    return Config() if path is None else read_toml(path, Config, ConfigError)


def resolve_data_dir(cli_value: Path | None, config: Config) -> Path:
    """``--data-dir`` wins, then $APPLIANCE_DATA_DIR, then the config's ``data_dir``, then
    ``./.appliance``."""
    if cli_value is not None:
        return cli_value
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    if config.data_dir:
        return Path(config.data_dir)
    return DEFAULT_DATA_DIR
