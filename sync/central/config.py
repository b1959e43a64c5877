"""Central's configuration: one TOML file (``--config``), validated strictly like the
appliance's: unknown keys and wrong types are refused with a message naming the key
(``tuf.root_threshold``). Every key has a default, so central runs with no file at all.

The same file is read by ``appliance central serve`` and by the commands that change central's
state (``policy publish``, ``keys rotate``), so both sign with the same expiry settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec

from appliance.validation import parse_toml, read_toml

DEFAULT_DATA_DIR = Path(".central")

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
PositiveSeconds = Annotated[int, msgspec.Meta(ge=1)]

_DAY = 86400


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    pass


class ServerConfig(_Section, frozen=True):
    """The HTTP listener and process lifecycle."""

    host: str = "127.0.0.1"
    port: Port = 8443
    shutdown_grace_seconds: Seconds = 30.0
    #: Request bodies above this size get 413 (a usage batch of a few thousand rows fits).
    max_body_bytes: PositiveInt = 8 * 1024 * 1024
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class TufConfig(_Section, frozen=True):
    """The policy repository's keys and expiry (see ``sync/PROTOCOL.md``, section 3).

    ``root_keys`` and ``root_threshold`` apply when the repository is created and at each
    ``appliance central keys rotate root``.
    """

    root_keys: PositiveInt = 1
    root_threshold: PositiveInt = 1
    root_expiry_seconds: PositiveSeconds = 365 * _DAY
    targets_expiry_seconds: PositiveSeconds = 365 * _DAY
    snapshot_expiry_seconds: PositiveSeconds = 7 * _DAY
    timestamp_expiry_seconds: PositiveSeconds = _DAY
    #: The server re-signs each role when less than half its lifetime is left; turn off only
    #: to let metadata expire on purpose (a test of the freeze protection).
    auto_refresh_timestamp: bool = True

    def __post_init__(self) -> None:
        if self.root_threshold > self.root_keys:
            raise ValueError("`root_threshold`: must not exceed `root_keys`")


class AuthConfig(_Section, frozen=True):
    """Signed requests from boxes."""

    #: A request signed further than this from central's clock is refused (``stale_request``).
    max_clock_skew_seconds: PositiveSeconds = 300


class EnrollmentConfig(_Section, frozen=True):
    default_ttl_hours: Annotated[float, msgspec.Meta(gt=0)] = 24.0


class CentralConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    #: Shown to boxes at enrollment and in their status.
    name: str = "central"
    #: Overridden by ``--data-dir``; default ``./.central``.
    data_dir: str | None = None
    server: ServerConfig = ServerConfig()
    tuf: TufConfig = TufConfig()
    auth: AuthConfig = AuthConfig()
    enrollment: EnrollmentConfig = EnrollmentConfig()


class CentralConfigError(Exception):
    """The configuration cannot be used; the message names the file and key."""


def parse_config(text: str, source: str = "<config>") -> CentralConfig:
    return parse_toml(text, CentralConfig, source, CentralConfigError)


def load_config(path: Path | None) -> CentralConfig:
    """Read and validate ``path``; ``None`` gives the defaults."""
    return CentralConfig() if path is None else read_toml(path, CentralConfig,
                                                          CentralConfigError)


def resolve_data_dir(cli_value: Path | None, config: CentralConfig) -> Path:
    """``--data-dir`` wins, then the config's ``data_dir``, then ``./.central``.

    $APPLIANCE_DATA_DIR is deliberately not read: it names a box's data directory, and central
    must never open (or sign into) that one by accident.
    """
    if cli_value is not None:
        return cli_value
    if config.data_dir:
        return Path(config.data_dir)
    return DEFAULT_DATA_DIR
