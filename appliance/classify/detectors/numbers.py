"""Identifiers that are digits in a recognisable layout: SSN, payment cards, phone and fax.

Each detector first finds cheap candidates (a run of digits and separators), then checks the
exact layout and, where one exists, the check digit. Layouts that are also common in benign
text (German national phone numbers, bare nine-digit SSNs) need a cue word nearby.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from appliance.classify.checksums import payment_card_valid, ssn_valid
from appliance.classify.detectors.base import Gate, Scan, match_at, occurrences, words
from appliance.classify.findings import Finding, FindingType

_PHONE_CUES = ("tel", "phone", "fax", "mobil", "cell", "handy", "call", "ruf", "kontakt",
               "contact", "erreichbar", "reach", "ph.", "ph:", "nummer", "number", "#")


#: Card numbers are digits grouped by spaces or dashes; a reportable one is 12+ such
#: characters, and the pattern's lookahead reads one character past them.
_CARD_CHARACTERS = "0123456789 -"


def _boundary_before(text: str, start: int) -> bool:
    return start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "._-/")


class SsnDetector:
    """``123-45-6789`` anywhere (with SSA validity rules); bare or spaced nine digits only
    after "SSN" / "social security" (see the labelled detector)."""

    types = frozenset({FindingType.SSN.value})
    triggers: frozenset[str] = frozenset()
    gates = (Gate(digit=True, layouts=("000-00-0000",)),)

    def __init__(self) -> None:
        self._pattern = re.compile(r"[0-9]\d\d-\d\d-\d{4}(?![\w-])")

    def find(self, scan: Scan) -> Iterator[Finding]:
        text = scan.text
        if not scan.has_digit or "-" not in text:
            return
        # the layout's places in the shapes are the only places it can match
        matches = (match_at(self._pattern, text, occurrences(scan.shape, ("000-00-0000",)))
                   if scan.gated else self._pattern.finditer(text))
        for match in matches:
            start = match.start()
            if _boundary_before(text, start) and ssn_valid(match.group()):
                yield Finding(FindingType.SSN, start, match.end(), 0.95)


class PaymentCardDetector:
    """13-19 digits, grouped by single spaces or dashes, with a card prefix and Luhn."""

    types = frozenset({FindingType.PAYMENT_CARD.value})
    triggers: frozenset[str] = frozenset()
    #: four digits, then 12 to 19 digits and their separators in all
    gates = (Gate(digit=True, layouts=("0000",), run=(_CARD_CHARACTERS, 12)),)

    def __init__(self) -> None:
        # The lookahead changes no match (a match is 4-32 such characters with no [\w-] after
        # it); it stops the nested groups from trying hundreds of splits at every digit of a
        # long digit run, where nothing can match.
        self._pattern = re.compile(r"[0-9](?=[0-9 -]{3,31}(?![\w-]))"
                                   r"\d{3}(?:[ -]?\d{2,6}){1,4}(?![\w-])")
        self._iban_head = re.compile(r"[A-Z]{2}\d\d ?$")

    def find(self, scan: Scan) -> Iterator[Finding]:
        if not scan.has_digit:
            return
        text = scan.text
        for match in (m for s, e in scan.runs(_CARD_CHARACTERS, 12, 1)
                      for m in self._pattern.finditer(text, s, e)):
            value = match.group()
            if " " in value and "-" in value:
                continue
            if self._iban_head.search(text, max(0, match.start() - 5), match.start()):
                continue  # the tail of an IBAN (one that failed mod 97)
            if _boundary_before(text, match.start()) and payment_card_valid(value):
                yield Finding(FindingType.PAYMENT_CARD, match.start(), match.end(), 0.97)


class PhoneDetector:
    """North American (``(555) 123-4567``, ``555.123.4567x89``) and international
    (``+49 (0) 30 1234567``) numbers anywhere; national numbers with a leading 0
    (``030 1234567``, ``(03449) 78690``) only after a cue such as "Tel." within 30 characters.
    A cue "fax" makes it a fax number."""

    types = frozenset({FindingType.PHONE.value, FindingType.FAX.value})
    def __init__(self) -> None:
        self._candidate = re.compile(r"[+(0-9][\d ().+/-]{6,26}\d(?:\s?(?:x|ext\.?)\s?\d{1,5})?")
        self._north_american = re.compile(
            r"(?<![\w.+-])(?:\+?1[ .-]?|001[ .-])?(?:\([2-9]\d\d\)\s?|[2-9]\d\d[ .-])"
            r"\d{3}[ .-]\d{4}(?!\d|-\d)(?:\s?(?:x|ext\.?)\s?\d{1,5})?")
        self._international = re.compile(
            r"(?<![\w.])\+\d{1,3}[ .-]?(?:\(0\)\s?)?\(?\d{1,5}\)?[ ./-]?\d[\d ./-]{3,14}\d")
        self._bare = re.compile(r"(?<![\w.])[2-9]\d{9}(?!\d)")
        self._national = re.compile(r"(?<![\w.])(?:\(0\d{2,5}\)|0\d{2,5})[ /-]?\d[\d -]{2,10}\d")
        self.triggers = words("tel", "telefon", "phone", "fax", "telefax", "mobile", "mobil",
                                "cell", "handy", "call", "rufnummer", "telefonnummer",
                                "contact", "kontakt", "erreichbar", "reach", "ph", "tel")
        # Every number lies inside a candidate (8+ characters of digits and separators) and
        # is North American ("234-5678"), international ("+4") or, after a cue word, national.
        run = ("0123456789 ().+/-", 8)
        self.gates = (Gate(digit=True, layouts=("000-0000", "000.0000", "000 0000", "+0"), run=run),
                      Gate(digit=True, words=self.triggers, layouts=("000",), run=run))

    def find(self, scan: Scan) -> Iterator[Finding]:
        if not scan.has_digit:
            return
        text = scan.text
        cued = scan.any_word(self.triggers)
        for candidate in self._candidate.finditer(text):
            s, e = candidate.span()
            match = (self._north_american.search(text, s, e)
                     or self._international.search(text, s, e))
            if match is None and cued:
                bare = self._bare.search(text, s, e)
                if bare and any(c in scan.before(bare.start(), 30) for c in _PHONE_CUES):
                    match = bare
            if match is None and cued:
                national = self._national.search(text, s, e)
                if national and any(c in scan.before(national.start(), 30)
                                    for c in _PHONE_CUES):
                    match = national
            if match is None:
                continue
            digits = sum(c.isdigit() for c in match.group().split("x")[0])
            if not 7 <= digits <= 17:
                continue
            kind = FindingType.FAX if "fax" in scan.before(match.start(), 25) else \
                FindingType.PHONE
            yield Finding(kind, match.start(), match.end(), 0.85)
