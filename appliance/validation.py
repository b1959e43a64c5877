"""Reading msgspec's validation errors, shared by the config file and the request bodies.

msgspec reports ``Expected `int`, got `str` - at `$.server.port``` or ``Object contains
unknown field `prot` - at `$.server```; callers want the dotted path of the offending key and
what went wrong, to name the key (config) or OpenAI's ``param`` (requests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

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
