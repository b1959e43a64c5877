"""Upstream API keys: resolved once at start, held so that they cannot leak by accident.

A reference in the config says where a key lives (``env:NAME`` or ``credential:NAME`` for a
systemd credential in ``$CREDENTIALS_DIRECTORY``); the key itself never sits in the config
file. ``Secret`` hides the value from ``repr``/``str``/f-strings and tracebacks' locals, so a
stray log line shows ``Secret('***')``; only the transport's header building calls
``reveal()``. ``redact`` removes the value from upstream text that might echo it back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from appliance.config import ConfigError

CREDENTIALS_DIRECTORY_ENV = "CREDENTIALS_DIRECTORY"


class Secret:
    """A credential value whose string forms never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the value replaced, for upstream messages."""
        return text.replace(self._value, "***") if self._value else text

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str:  # pickling would write the value somewhere
        raise TypeError("a Secret cannot be pickled")


def resolve_credential(provider: str, reference: str,
                       environ: Mapping[str, str] | None = None) -> Secret:
    """The key ``reference`` points at; a ``ConfigError`` naming the provider and the
    reference (never a value) when it is missing or empty."""
    env = os.environ if environ is None else environ
    source, _, name = reference.partition(":")
    if source == "env":
        value = env.get(name, "")
        if not value:
            raise ConfigError(f"provider {provider!r}: credential {reference!r}: environment "
                              f"variable {name} is not set or empty")
    elif source == "credential":
        directory = env.get(CREDENTIALS_DIRECTORY_ENV, "")
        if not directory:
            raise ConfigError(f"provider {provider!r}: credential {reference!r}: "
                              f"${CREDENTIALS_DIRECTORY_ENV} is not set (is the unit's "
                              f"LoadCredential={name}:... missing?)")
        path = Path(directory) / name
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"provider {provider!r}: credential {reference!r}: cannot read "
                              f"{path}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"provider {provider!r}: credential {reference!r}: {path} is "
                              "empty")
    else:
        raise ConfigError(f"provider {provider!r}: credential {reference!r}: expected "
                          "'env:NAME' or 'credential:NAME'")
    if any(c in value for c in "\r\n\0"):  # it goes into a header line as it is
        raise ConfigError(f"provider {provider!r}: credential {reference!r}: contains a line "
                          "break or NUL (a stray newline in the file or variable?)")
    return Secret(value)
