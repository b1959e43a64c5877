"""Reading msgspec's validation errors, shared by the config files and the request bodies,
and reading a TOML file into a msgspec struct with errors that name the key.

msgspec reports ``Expected `int`, got `str` - at `$.server.port``` or ``Object contains
unknown field `prot` - at `$.server```; callers want the dotted path of the offending key and
what went wrong, to name the key (config) or OpenAI's ``param`` (requests).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import msgspec

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD = re.compile(r"^Object (?:contains unknown|missing required) field `(?P<field>[^`]+)`$")


@dataclass(frozen=True, slots=True)
class Problem:
    kind: Literal["unknown", "missing", "invalid"]
    #: Dotted path of the offending key (``server.port``, ``messages[0].role``); "" is the root.
    path: str
    #: msgspec's sentence without the location, e.g. "Expected `int`, got `str`".
    text: str


def describe(exc: msgspec.ValidationError) -> Problem:
    text = str(exc)
    path = ""
    at = _AT.search(text)
    if at:
        path = at.group("path").lstrip(".")
        text = text[: at.start()]
    field = _FIELD.match(text)
    if field is None:
        return Problem("invalid", path, text)
    key = f"{path}.{field.group('field')}" if path else field.group("field")
    return Problem("unknown" if "unknown" in text else "missing", key, text)


def explain(exc: msgspec.ValidationError, noun: str = "key") -> str:
    """``key `server.port`: expected `int`, got `str``` rather than msgspec's own sentence;
    ``noun`` is what the file calls its entries (``key`` in a config, ``field`` in a policy)."""
    problem = describe(exc)
    if problem.kind == "unknown":
        return f"unknown {noun} `{problem.path}`"
    if problem.kind == "missing" or not problem.path:
        return problem.text
    return f"{noun} `{problem.path}`: {problem.text[0].lower()}{problem.text[1:]}"


S = TypeVar("S")


def parse_toml(text: str, kind: type[S], source: str, error: type[Exception],
               noun: str = "key") -> S:
    """Parse TOML ``text`` into the msgspec struct ``kind`` (unknown keys refused by the
    struct); any problem is ``error("<source>: ...")`` naming the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: not valid TOML: {exc}") from exc
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise error(f"{source}: {explain(exc, noun)}") from exc


def read_toml(path: Path, kind: type[S], error: type[Exception], what: str = "config") -> S:
    """``parse_toml`` of a file; an unreadable file is ``error`` too."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from exc
    return parse_toml(text, kind, str(path), error)
