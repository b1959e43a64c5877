"""Identifiers with a fixed alphanumeric layout, found without a label: IBAN (mod 97),
Medicare MBI (CMS layout), VIN (check digit).

These layouts are specific enough that part codes and version strings rarely take them; the
check digits of IBAN and VIN remove most of the rest. The MBI has no check digit, so its
layout (fixed letter/digit positions, no S, L, O, I, B, Z) is all there is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from appliance.classify.checksums import iban_valid, vin_valid
from appliance.classify.detectors.base import Gate, Scan
from appliance.classify.findings import Finding, FindingType

_A = "AC-HJKMNP-RT-Y"  # MBI letters
_MBI = (rf"[1-9][{_A}][{_A}0-9]\d(?P<d1>-?)[{_A}][{_A}0-9]\d(?P=d1)[{_A}][{_A}]\d\d")


#: The characters each pattern is made of: every match lies in a run of them at least as long
#: as the shortest value that can be reported, so only such runs are searched.
_IBAN_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
_MBI_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
_VIN_CHARACTERS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


def _isolated(text: str, start: int, end: int) -> bool:
    return ((start == 0 or not text[start - 1].isalnum())
            and (end == len(text) or not text[end].isalnum()))


class IbanDetector:
    types = frozenset({FindingType.IBAN.value})
    triggers: frozenset[str] = frozenset()
    #: country code and check digits; 15+ characters in all
    gates = (Gate(digit=True, layouts=("AA00",),
                  run=(_IBAN_CHARACTERS, 15)),)

    def __init__(self) -> None:
        self._pattern = re.compile(r"[A-Z][A-Z]\d\d(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?")

    def find(self, scan: Scan) -> Iterator[Finding]:
        if not scan.has_digit:
            return
        text = scan.text
        for match in (m for s, e in scan.runs(_IBAN_CHARACTERS, 15)
                      for m in self._pattern.finditer(text, s, e)):
            value = match.group()
            end = match.end()
            # the greedy tail may have eaten the next word's start; shrink until valid
            while value and not iban_valid(value):
                value = value[:-1].rstrip()
                if len(value) < 15:
                    value = ""
            if value and _isolated(text, match.start(), match.start() + len(value)):
                end = match.start() + len(value)
                yield Finding(FindingType.IBAN, match.start(), end, 0.98)


class MbiDetector:
    types = frozenset({FindingType.MEDICARE_MBI.value})
    triggers: frozenset[str] = frozenset()
    #: its last four characters; 11 characters and dashes in all
    gates = (Gate(digit=True, layouts=("AA00",),
                  run=(_MBI_CHARACTERS, 11)),)

    def __init__(self) -> None:
        self._pattern = re.compile(_MBI)

    def find(self, scan: Scan) -> Iterator[Finding]:
        if not scan.has_digit:
            return
        text = scan.text
        for match in (m for s, e in scan.runs(_MBI_CHARACTERS, 11)
                      for m in self._pattern.finditer(text, s, e)):
            if _isolated(text, match.start(), match.end()):
                yield Finding(FindingType.MEDICARE_MBI, match.start(), match.end(), 0.9)


class VinDetector:
    types = frozenset({FindingType.VIN.value})
    triggers: frozenset[str] = frozenset()
    #: 17 characters, a letter next to a digit somewhere
    gates = (Gate(digit=True, layouts=("A0", "0A"),
                  run=(_VIN_CHARACTERS, 17)),)

    def __init__(self) -> None:
        self._pattern = re.compile(r"[A-HJ-NPR-Z0-9][A-HJ-NPR-Z0-9]{16}")

    def find(self, scan: Scan) -> Iterator[Finding]:
        if not scan.has_digit:
            return
        text = scan.text
        for match in (m for s, e in scan.runs(_VIN_CHARACTERS, 17)
                      for m in self._pattern.finditer(text, s, e)):
            value = match.group()
            if (_isolated(text, match.start(), match.end()) and not value.isdigit()
                    and not value.isalpha() and vin_valid(value)):
                yield Finding(FindingType.VIN, match.start(), match.end(), 0.95)
