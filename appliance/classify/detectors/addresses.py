"""Street addresses and ZIP codes, US and German.

US: a house number, one to three capitalised words and a USPS street suffix ("675 Reed
Plain", "12 N Oak St."), and a ZIP after a state code ("Springfield, IL 62704", "APO AE
09012"). German: a street name ending in -straße/-weg/-gasse/... followed by a house number
("Blümelstraße 49/98"), and the five-digit PLZ that follows it. A ZIP on its own is only
caught after a label (see the labelled detector).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from appliance.classify.detectors.base import Gate, Scan, match_at
from appliance.classify.findings import Finding, FindingType

_US_SUFFIXES = (
    "Alley|Avenue|Ave|Branch|Bridge|Brook|Brooks|Burg|Burgs|Bypass|Blvd|Boulevard|Camp|Canyon|"
    "Cape|Causeway|Center|Centers|Circle|Cir|Circles|Cliff|Cliffs|Club|Common|Corner|Corners|"
    "Course|Court|Ct|Courts|Cove|Coves|Creek|Crescent|Crest|Crossing|Crossroad|Curve|Dale|Dam|"
    "Divide|Drive|Dr|Drives|Estate|Estates|Expressway|Extension|Extensions|Fall|Falls|Ferry|"
    "Field|Fields|Flat|Flats|Ford|Fords|Forest|Forge|Forges|Fork|Forks|Fort|Freeway|Garden|"
    "Gardens|Gateway|Glen|Glens|Green|Greens|Grove|Groves|Harbor|Harbors|Haven|Heights|Highway|"
    "Hwy|Hill|Hills|Hollow|Inlet|Island|Islands|Isle|Junction|Junctions|Key|Keys|Knoll|Knolls|"
    "Lake|Lakes|Land|Landing|Lane|Ln|Light|Lights|Loaf|Lock|Locks|Lodge|Loop|Mall|Manor|Manors|"
    "Meadow|Meadows|Mews|Mill|Mills|Mission|Motorway|Mount|Mountain|Mountains|Neck|Orchard|"
    "Oval|Overpass|Park|Parks|Parkway|Pkwy|Parkways|Pass|Passage|Path|Pike|Pine|Pines|Place|Pl|"
    "Plain|Plains|Plaza|Point|Points|Port|Ports|Prairie|Radial|Ramp|Ranch|Rapid|Rapids|Rest|"
    "Ridge|Ridges|River|Road|Rd|Roads|Route|Row|Rue|Run|Shoal|Shoals|Shore|Shores|Skyway|"
    "Spring|Springs|Spur|Spurs|Square|Sq|Squares|Station|Stravenue|Stream|Street|St|Streets|"
    "Summit|Terrace|Ter|Throughway|Trace|Track|Trafficway|Trail|Tunnel|Turnpike|Underpass|"
    "Union|Unions|Valley|Valleys|Via|Viaduct|View|Views|Village|Villages|Ville|Vista|Walk|"
    "Walks|Wall|Way|Ways|Well|Wells")
_US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP FM MH PW AA "
    "AE AP".split())
#: "-ring" is also English ("Spring 2024"), so it counts only with a PLZ after it.
_DE_SUFFIXES = (r"(?P<suffix>(?i:stra(?:ß|ss)e|str\.|weg|gasse|platz|allee|ring|damm|ufer|"
                r"chaussee|pfad|steig|promenade))")
#: Substrings of the lower-cased text that every German street suffix contains.
_DE_NEEDLES = ("stra", "str.", "weg", "gasse", "platz", "allee", "ring", "damm", "ufer",
               "chaussee", "pfad", "steig", "promenade")
_DE_ANCHOR = (r"(?:stra(?:ß|ss)e|str\.|weg|gasse|platz|allee|ring|damm|ufer|chaussee|pfad|"
              r"steig|promenade)[ \t]+\d")


class AddressDetector:
    types = frozenset({FindingType.STREET_ADDRESS.value, FindingType.ZIP_CODE.value})

    def __init__(self) -> None:
        self._us_street = re.compile(
            r"[0-9]\d{0,5}[ \t]+(?:[NSEW]\.?[ \t]+)?(?:[A-Z][a-z]+[ \t]+){1,3}?"
            rf"(?:{_US_SUFFIXES})\b\.?"
            r"(?:,?[ \t]+(?:Apt\.|Suite|Ste\.?|Unit|#)[ \t]*[\w-]+)?")
        self._us_zip = re.compile(r"[A-Z][A-Z][ \t]+(?P<zip>\d{5}(?:-\d{4})?)(?![\w-])")
        self.triggers = frozenset(_US_SUFFIXES.lower().split("|"))
        self._de_anchor = re.compile(_DE_ANCHOR)
        self.gates = (
            # US street: house number, a capitalised word (or more space), a suffix word
            Gate(digit=True, words=self.triggers, layouts=("0 A", "0  ")),
            Gate(digit=True, layouts=("A 00000", "  00000")),  # US ZIP: "IL 62704"
            # German street: suffix, space, house number
            Gate(digit=True, layouts=(" 0",), lowered=_DE_NEEDLES, check=self._has_de_anchor),
        )
        self._de_street = re.compile(
            r"[A-ZÄÖÜ](?<![\w-].)[\wäöüß.-]{0,40}?" + _DE_SUFFIXES
            + r"[ \t]+\d{1,4}(?:[ \t]?[a-zA-Z](?!\w)|[/-]\d{1,4})?"
            r"(?:(?:,[ \t]*|[ \t]*\n[ \t]*)(?P<plz>\d{5})(?=[ \t]+[A-ZÄÖÜ]))?")

    def _de_anchors(self, scan: Scan) -> list[int]:
        """The starts of ``_DE_ANCHOR``'s matches in the lowered text (a suffix, then a house
        number), tried only where a suffix occurs (the needles' positions are cached in the
        scan, so the gate and ``find`` share them)."""
        lowered = scan.lowered
        starts = sorted({at for needle in _DE_NEEDLES if needle in lowered
                         for at in scan.positions(needle)})
        return [m.start() for m in match_at(self._de_anchor, lowered, starts)] if starts else []

    def _has_de_anchor(self, scan: Scan) -> bool:
        return bool(self._de_anchors(scan))

    def find(self, scan: Scan) -> Iterator[Finding]:
        if not scan.has_digit:
            return
        text = scan.text
        us_windows = scan.windows(self.triggers, 70, 30)
        for match in (m for s, e in us_windows for m in self._us_street.finditer(text, s, e)):
            start = match.start()
            if start and (text[start - 1].isalnum() or text[start - 1] in ".-/"):
                continue
            yield Finding(FindingType.STREET_ADDRESS, start, match.end(), 0.8)
        for match in self._us_zip.finditer(text):
            start = match.start()
            if match.group()[:2] not in _US_STATES or (start and text[start - 1].isalnum()):
                continue
            before = text[max(0, start - 2):start]
            if "," in before or "\n" in before or text[max(0, start - 4):start] in (
                    "APO ", "FPO ", "DPO "):
                yield Finding(FindingType.ZIP_CODE, match.start("zip"), match.end("zip"), 0.85)
        anchors = self._de_anchors(scan)
        de_windows = [(max(0, a - 45), a + 40) for a in anchors]
        for match in (m for s, e in de_windows for m in self._de_street.finditer(text, s, e)):
            if match.group("suffix").lower() == "ring" and not match.group("plz"):
                continue
            plz_start = match.start("plz") if match.group("plz") else match.end()
            end = plz_start if match.group("plz") else match.end()
            street_end = text.rfind("\n", match.start(), end)
            street_end = end if street_end < 0 else street_end
            yield Finding(FindingType.STREET_ADDRESS, match.start(),
                          match.start() + len(text[match.start():street_end].rstrip(" ,\t")),
                          0.8)
            if match.group("plz"):
                yield Finding(FindingType.ZIP_CODE, match.start("plz"), match.end("plz"), 0.8)
