"""E-mail addresses, URLs, IP and MAC addresses.

A URL to a public site is ``internal`` at most; one whose host is a private address or an
intranet name (``.local``, ``.corp``, a single label) is an internal network identifier and
so ``confidential``, like any IP address. Dotted quads preceded by "version"/"v" are
versions, not addresses.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from appliance.classify.detectors.base import Gate, Scan, match_at, occurrences
from appliance.classify.findings import Finding, FindingType

_INTERNAL_SUFFIXES = (".local", ".internal", ".lan", ".corp", ".intranet", ".intra", ".home",
                      ".localdomain", ".private", ".test", ".example", ".invalid")
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")


#: A dotted quad is 7+ digits and dots in a row; a "/24" and the lookarounds after it reach
#: 4 characters past them. A MAC address is 17 hex digits and separators, then a lookahead.
_IPV4_CHARACTERS = "0123456789."
_MAC_CHARACTERS = "0123456789abcdefABCDEF:-"


def _is_internal_host(host: str) -> bool:
    host = host.lower().strip("[]")
    if host == "localhost" or "." not in host or host.endswith(_INTERNAL_SUFFIXES):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


class EmailDetector:
    types = frozenset({FindingType.EMAIL.value})
    triggers: frozenset[str] = frozenset()
    gates = (Gate(needles=("@",)),)

    def __init__(self) -> None:
        self._domain = re.compile(r"@[A-Za-z0-9](?:[A-Za-z0-9-]*\.)+[A-Za-z]{2,24}\b")

    def find(self, scan: Scan) -> Iterator[Finding]:
        text = scan.text
        if "@" not in text:
            return
        for match in self._domain.finditer(text):
            start = match.start()
            while start > 0 and text[start - 1] in _EMAIL_LOCAL:
                start -= 1
            if start < match.start() and text[start] != ".":
                yield Finding(FindingType.EMAIL, start, match.end(), 0.97)


class UrlDetector:
    types = frozenset({FindingType.URL.value, FindingType.INTERNAL_URL.value})
    triggers: frozenset[str] = frozenset()
    gates = (Gate(needles=("://", "www.")),)

    def __init__(self) -> None:
        self._pattern = re.compile(
            r"(?:[a-z][a-z0-9+.-]{1,15}://|www\.)(?:[^\s/@<>\"']+@)?(?P<host>\[[0-9a-fA-F:]+\]|"
            r"[\w.-]+)(?::\d{1,5})?(?:[/?#][^\s<>\"']*)?", re.ASCII)

    def find(self, scan: Scan) -> Iterator[Finding]:
        if "://" not in scan.text and "www." not in scan.lowered:
            return
        # a match begins with "www." or with a scheme of 2-16 characters before a "://"
        text = scan.text
        starts = {start for at in occurrences(text, ("://",))
                  for start in range(max(0, at - 16), at - 1)}
        starts.update(occurrences(text, ("www.",)))
        for match in match_at(self._pattern, text, sorted(starts)):
            end = match.end()
            while end > match.start() and scan.text[end - 1] in ".,;:)!?":
                end -= 1
            internal = _is_internal_host(match.group("host").rstrip("."))
            kind = FindingType.INTERNAL_URL if internal else FindingType.URL
            yield Finding(kind, match.start(), end, 0.95)


class IpAddressDetector:
    """IPv4 dotted quads (every octet <= 255) and IPv6 with ``::`` or eight groups; MAC
    addresses are reported as device identifiers."""

    types = frozenset({FindingType.IP_ADDRESS.value, FindingType.DEVICE_ID.value})
    triggers: frozenset[str] = frozenset()
    #: IPv4 has a digit, a dot and a digit; IPv6 a "::" or eight groups (15+ characters of
    #: hex digits and colons); a MAC address 17 characters of hex digits and ":" or "-".
    gates = (Gate(digit=True, layouts=("0.0",), run=(_IPV4_CHARACTERS, 7)),
             Gate(digit=True, needles=("::",)),
             Gate(digit=True, needles=(":", "-"), run=(_MAC_CHARACTERS, 15)))

    def __init__(self) -> None:
        self._ipv4 = re.compile(r"[0-9]\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w-]|\.\d)"
                                r"(?:/\d{1,2}\b)?")
        self._ipv6 = re.compile(r"[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}")
        self._mac = re.compile(r"[0-9A-Fa-f][0-9A-Fa-f]([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}"
                               r"(?![\w:-])")
        #: Two colons with at most four hex digits between: every IPv6 match has such a pair.
        self._ipv6_hint = re.compile(r":[0-9a-fA-F]{0,4}:")
        self._version = re.compile(r"\b(?:v|version|ver\.?|release|build|firmware|fw)\s*$")

    def _ipv6_matches(self, text: str) -> Iterator[re.Match[str]]:
        """``finditer`` of the IPv6 pattern, run only near colon pairs: the pattern may start
        at any hex letter, so a scan of the whole text tries most positions of prose."""
        windows: list[tuple[int, int]] = []
        for hint in self._ipv6_hint.finditer(text):
            start, end = max(0, hint.start() - 5), hint.start() + 45
            if windows and start <= windows[-1][1]:
                windows[-1] = (windows[-1][0], end)
            else:
                windows.append((start, end))
        for start, end in windows:
            yield from self._ipv6.finditer(text, start, end)

    def find(self, scan: Scan) -> Iterator[Finding]:
        text = scan.text
        if not scan.has_digit:
            return
        if text.count(".") >= 3:
            for match in (m for s, e in scan.runs(_IPV4_CHARACTERS, 7, 4)
                          for m in self._ipv4.finditer(text, s, e)):
                start = match.start()
                if start and (text[start - 1].isalnum() or text[start - 1] in ".-"):
                    continue
                octets = match.group().split("/")[0].split(".")
                if any(int(o) > 255 or (len(o) > 1 and o[0] == "0") for o in octets):
                    continue
                if self._version.search(scan.before(start, 12)):
                    continue
                yield Finding(FindingType.IP_ADDRESS, start, match.end(), 0.9)
        colons = text.count(":")
        if "::" in text or colons >= 7:
            for match in self._ipv6_matches(text):
                value = match.group()
                if "::" not in value and value.count(":") != 7:
                    continue
                if value.count(":") < 2 or len(value.replace(":", "")) < 3:
                    continue
                if match.start() and (text[match.start() - 1].isalnum()
                                      or text[match.start() - 1] == ":"):
                    continue
                try:
                    ipaddress.IPv6Address(value)
                except ValueError:
                    continue
                yield Finding(FindingType.IP_ADDRESS, match.start(), match.end(), 0.85)
        if colons >= 5 or text.count("-") >= 5:
            for match in (m for s, e in scan.runs(_MAC_CHARACTERS, 17, 1)
                          for m in self._mac.finditer(text, s, e)):
                if match.start() and text[match.start() - 1].isalnum():
                    continue
                yield Finding(FindingType.DEVICE_ID, match.start(), match.end(), 0.9)
