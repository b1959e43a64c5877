"""Patterns rewritten so that ``re`` can skip to them match what they matched before.

``re`` tries a pattern that begins with a lookbehind, or with an alternative that begins with
a group or a class, at every position; one whose alternatives all begin with a plain
character only where such a character stands. The label, cue, token and street patterns were
rewritten that way (``base.at_word_start``); this file holds them as they were, checks that
the new ones give the same matches (spans and groups) on the corpus, its mutations, random
texts and random slices of them, and that ``re`` can indeed skip to the new ones.
"""

import random
import re
from collections.abc import Callable
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

import pytest

from appliance.classify.detectors.addresses import AddressDetector
from appliance.classify.detectors.base import at_word_start
from appliance.classify.detectors.labelled import _KINDS, LabelledDetector
from appliance.classify.detectors.people import PersonDateDetector
from appliance.classify.detectors.secrets import SecretDetector
from appliance.classify.findings import FindingType
from tests.appliance.classify.test_gates import _texts

_N = r"(?:[ \t]*(?:number|numbers|no\.?|nr\.?|num\.?|#|id|code))?"
_SEP = r"[ \t]*(?:[:#=]|is|lautet)?[ \t]*(?:[:#][ \t]*)?"
#: The labels of each kind as they were written before the rewrite.
_OLD_LABELS = {
    FindingType.MRN: rf"mrn|medical[ \t]+record(?:s)?{_N}|med\.?[ \t]*rec\.?{_N}|chart{_N}"
                     r"|patient(?:en)?[ \t-]*(?:id|nummer|nr\.?|identifier)"
                     rf"|patient[ \t]+record{_N}|fallnummer|fall-?nr\.?|aktenzeichen|pid"
                     r"|krankenblattnummer",
    FindingType.DE_KVNR: r"(?:kranken)?versichertennummer|kvnr|kv-nr\.?|versicherten-?nr\.?",
    FindingType.MEDICARE_MBI: rf"mbi|medicare(?:[ \t]+beneficiary)?(?:[ \t]+identifier)?{_N}",
    FindingType.HEALTH_PLAN_ID: r"(?:member(?:ship)?|subscriber|policy|group|insurance|insured|"
                                r"beneficiary|health[ \t]+plan|plan|medicaid|coverage)[ \t]*"
                                r"(?:id|number|no\.?|nr\.?|#)|versicherungsnummer"
                                r"|mitgliedsnummer|versicherungs-?nr\.?",
    FindingType.SSN: rf"ssn|social[ \t]+security{_N}|ss#",
    FindingType.NPI: rf"npi{_N}",
    FindingType.DEA_NUMBER: rf"dea{_N}|dea[ \t]+registration{_N}",
    FindingType.ACCOUNT_NUMBER: rf"account{_N}|acct\.?{_N}|a/c|kontonummer|konto-?nr\.?"
                                r"|kundennummer|kunden-?nr\.?|customer[ \t]*(?:id|number|no\.?|#)"
                                rf"|routing{_N}|aba{_N}|billing[ \t]+(?:id|account)"
                                r"|guarantor[ \t]+(?:id|number)",
    FindingType.LICENSE_NUMBER: rf"(?:driver'?s?[ \t]+)?licen[cs]e{_N}|lic\.?[ \t]*(?:no\.?|#)"
                                rf"|certificate{_N}|cert\.?[ \t]*(?:no\.?|#)"
                                rf"|führerschein(?:nummer)?|lanr|permit{_N}|passport{_N}"
                                r"|reisepass(?:nummer)?|personalausweis(?:nummer)?"
                                r"|ausweisnummer|approbationsnummer|steuer-?id|steuernummer"
                                r"|steuerliche[ \t]+identifikationsnummer"
                                rf"|licen[cs]e[ \t]+plate|kennzeichen|registration{_N}",
    FindingType.VIN: r"vin|fahrgestellnummer|fin",
    FindingType.DEVICE_ID: rf"serial{_N}|s/n|sn|seriennummer|serien-?nr\.?"
                           r"|device[ \t]*(?:id|serial)|imei|udi"
                           r"|asset[ \t]*(?:tag|id|number|no\.?)|inventarnummer"
                           r"|inventar-?nr\.?|geräte-?(?:id|nummer|nr\.?)|machine[ \t]+id"
                           r"|maschinen-?(?:id|nummer|nr\.?)",
    FindingType.ZIP_CODE: r"zip(?:[ \t]*code)?|postleitzahl|plz|postal[ \t]+code",
}
_OLD_PERSON_DATE = (
    r"(?<![\w])(?:(?P<birth>dob|d\.o\.b\.?|date[ \t]+of[ \t]+birth|birth[ \t]?date|birthday"
    r"|born|geb\.|geboren|geburtsdatum|geburtstag)|(?P<event>admitted|admission|admit"
    r"|discharged|discharge|date[ \t]+of[ \t]+death|died|deceased|expired"
    r"|date[ \t]+of[ \t]+service|dos|seen|visit|appointment|surgery|procedure|operated"
    r"|aufgenommen|aufnahme|entlassen|entlassung|verstorben|sterbedatum|behandlungsdatum"
    r"|op-datum|operiert|termin|vorstellung))[\w]*[^\n;]{0,40}?(?<!\d)(?:[ \t:,(]|am[ \t]"
    r"|on[ \t])(?P<date>\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})(?!\d)|\d{4}-\d{2}-\d{2}"
    r"|\d{1,2}\.?[ \t]+(?:jan|feb|mär|mar|apr|mai|may|jun|jul|aug|sep|okt|oct|nov|dez|dec)"
    r"[a-zä]*\.?,?[ \t]+\d{4}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
    r"[ \t]+\d{1,2}(?:st|nd|rd|th)?,?[ \t]+\d{4})")
_OLD_TOKENS = (
    r"(?P<t0>(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA)[A-Z0-9]{16})"
    r"|(?P<t1>AccountKey=[A-Za-z0-9+/]{40,}={0,2})|(?P<t2>gh[pousr]_[A-Za-z0-9]{36,255})"
    r"|(?P<t3>github_pat_[A-Za-z0-9_]{22,255})|(?P<t4>glpat-[A-Za-z0-9_-]{20,})"
    r"|(?P<t5>sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-)?[A-Za-z0-9_-]{20,})"
    r"|(?P<t6>xox[abposr]-[A-Za-z0-9-]{10,})|(?P<t7>AIza[0-9A-Za-z_-]{35})"
    r"|(?P<t8>(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,})|(?P<t9>hf_[A-Za-z0-9]{30,})"
    r"|(?P<t10>npm_[A-Za-z0-9]{36})"
    r"|(?P<t11>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})")
#: The old token groups by type (t8 became three tokens: sk_, rk_, pk_).
_OLD_TOKEN_TYPES = {f"t{i}": FindingType.CLOUD_ACCESS_KEY if i < 2 else FindingType.API_KEY
                    for i in range(12)}
_OLD_DE_STREET = (
    r"(?<![\w-])[A-ZÄÖÜ][\wäöüß.-]{0,40}?(?P<suffix>(?i:stra(?:ß|ss)e|str\.|weg|gasse|platz"
    r"|allee|ring|damm|ufer|chaussee|pfad|steig|promenade))[ \t]+\d{1,4}(?:[ \t]?[a-zA-Z]"
    r"(?!\w)|[/-]\d{1,4})?(?:(?:,[ \t]*|[ \t]*\n[ \t]*)(?P<plz>\d{5})(?=[ \t]+[A-ZÄÖÜ]))?")

#: Fragments that make the rewritten patterns match, and nearly match, in random texts.
_PIECES = [
    "MRN: ", "mrn ", "Medical Record Number ", "med. rec. # ", "chart no ", "Patienten-Nr. ",
    "Fall-Nr.", "Krankenversichertennummer ", "versichertennummer", "KV-Nr. ", "MBI ",
    "Medicare Beneficiary Identifier ", "member ship id ", "Membership ID ", "health plan # ",
    "SSN ", "social security no. ", "ss#", "NPI ", "DEA registration number ", "account # ",
    "acct.", "a/c ", "konto-nr.", "customer no. ", "aba ", "driver's license ", "drivers licence",
    "lic. no ", "cert # ", "führerscheinnummer ", "steuer-id ", "license plate ", "VIN ",
    "fin ", "S/N ", "sn ", "serien-nr ", "asset tag ", "geräte-id ", "maschinen-nr. ", "ZIP ",
    "zip code ", "postal code ", "PLZ ", " is ", " lautet ", ": ", "# ", "= ", "-", ".", " ",
    "\n", ";", "x", "A123456780", "1234567893", "AB1234563", "123-45-6789", "1EG4TE5MK73",
    "1M8GDM9AXKP042788", "12345", "12345-6789", "W123456789", "00412345678", "kvnr a123456780",
    "versichertennummer: b987654321", "npi 1234567893 ", "dea ab1234563", "vin 1m8gdm9axkp042788",
    "ssn 123-45-6789", "ss# 123456789", "zip 12345", "postal code: 12345-6789",
    "DOB ", "d.o.b. ", "date of birth ", "birthdate ", "born on ", "geb. ", "geboren am ",
    "admitted ", "date of death ", "date of service ", "dos ", "seen on ", "op-datum ", "am ",
    "on ", "(", ",", "03/04/1956", "1956-03-04", "4. März 1956", "March 4th, 1956", "12.3.85",
    "1875", "AKIA", "ASIA", "AIza", "AccountKey=", "ghp_", "github_pat_", "glpat-", "sk-",
    "sk-proj-", "sk_live_", "rk_test_", "pk_live_", "xoxb-", "hf_", "npm_", "eyJ", "eyJhbGci.",
    "ABCDEFGHIJKLMNOP", "0123456789", "abcdefghijklmnopqrstuvwxyz", "_", "=", "/", "+",
    "Hauptstraße 12", "Ringstr. 4a", "Am Ring 7, 10115 Berlin", "Gartenweg 3/5\n12345 Köln",
    "Blümelstrasse 49-98", "Ä", "ß", "Müller", "weg", "gasse ", "PLATZ ", "ufer ", "steig ",
]


def _random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 20)))
            for _ in range(count)]


def _all_texts() -> list[str]:
    texts = _texts() + _random_texts(4000, 13)
    return texts + [text.lower() for text in texts]


_Key = Callable[[re.Match[str]], object]


def _differences(old: re.Pattern[str], new: re.Pattern[str], old_key: _Key, new_key: _Key
                 ) -> tuple[list[str], int]:
    """The texts (and slices of them) where ``finditer`` gives different matches, and how
    many matches the old pattern gave (so that a test that compares nothing fails)."""
    rng = random.Random(17)
    differ: list[str] = []
    matched = 0
    for text in _all_texts():
        slices = [(0, len(text))]
        for _ in range(2):
            start = rng.randint(0, len(text))
            slices.append((start, rng.randint(start, len(text))))
        for start, end in slices:
            before = [old_key(m) for m in old.finditer(text, start, end)]
            matched += len(before)
            if before != [new_key(m) for m in new.finditer(text, start, end)]:
                differ.append(text[start:end])
    return differ, matched


def _span_and(*groups: str) -> _Key:
    return lambda m: (m.span(), *(m.span(g) for g in groups))


@pytest.mark.parametrize("kind", _KINDS, ids=lambda kind: kind.type.value)
def test_labels_match_what_they_matched(kind: Any) -> None:
    value = rf"(?P<v>{kind.value})(?![\w-]*[\w])"
    old = re.compile(rf"(?<![\w-])(?:{_OLD_LABELS[kind.type]}){_SEP}{value}")
    new = dict(LabelledDetector(frozenset({kind.type.value}))._kinds)[kind]
    differ, matched = _differences(old, new, _span_and("v"), _span_and("v"))
    assert differ == [], f"{len(differ)} differ, e.g. {differ[:3]}"
    assert matched > 50, matched


def test_birth_and_event_dates_match_what_they_matched() -> None:
    detector = PersonDateDetector()

    def new_key(m: re.Match[str]) -> object:
        return m.span(), m.span("date"), bool(detector._birth.fullmatch(m.group("cue")))

    def old_key(m: re.Match[str]) -> object:
        return m.span(), m.span("date"), bool(m.group("birth"))

    differ, matched = _differences(re.compile(_OLD_PERSON_DATE), detector._pattern, old_key,
                                   new_key)
    assert differ == [], f"{len(differ)} differ, e.g. {differ[:3]}"
    assert matched > 300, matched


def test_tokens_match_what_they_matched() -> None:
    detector = SecretDetector()

    def new_key(m: re.Match[str]) -> object:
        return m.span(), detector._token_types[m.lastgroup or ""]

    def old_key(m: re.Match[str]) -> object:
        return m.span(), _OLD_TOKEN_TYPES[m.lastgroup or ""]

    differ, matched = _differences(re.compile(_OLD_TOKENS), detector._tokens, old_key, new_key)
    assert differ == [], f"{len(differ)} differ, e.g. {differ[:3]}"
    assert matched > 500, matched


def test_german_streets_match_what_they_matched() -> None:
    key = _span_and("suffix", "plz")
    differ, matched = _differences(re.compile(_OLD_DE_STREET), AddressDetector()._de_street,
                                   key, key)
    assert differ == [], f"{len(differ)} differ, e.g. {differ[:3]}"
    assert matched > 500, matched


def _skippable(pattern: str) -> bool:
    """Whether ``re`` skips to the pattern's first characters (its compiler gives it a
    literal or character-set prefix): it begins, inside any groups, with a character, a
    class, or an alternation whose alternatives each begin with a character."""
    items = _parser.parse(pattern)
    while True:
        op, av = items[0]
        if op is not sre.SUBPATTERN:
            break
        items = av[3]
    if op in (sre.LITERAL, sre.IN):
        return True
    return bool(op is sre.BRANCH and all(alt and alt[0][0] is sre.LITERAL for alt in av[1]))


def test_re_can_skip_to_the_rewritten_patterns() -> None:
    labelled = LabelledDetector(frozenset(kind.type.value for kind in _KINDS))
    patterns = [p.pattern for _, p in labelled._kinds] + [
        PersonDateDetector()._pattern.pattern, SecretDetector()._tokens.pattern,
        AddressDetector()._de_street.pattern]
    assert [p for p in patterns if not _skippable(p)] == []
    assert not _skippable(_OLD_PERSON_DATE) and not _skippable(_OLD_TOKENS)


def test_at_word_start_matches_the_lookbehind_it_replaces() -> None:
    alternatives = ("ab", "a", "b[cd]?", "ac(?:x|y)", "c")
    not_after = r"[\w-]"
    old = re.compile(f"(?<!{not_after})(?:{'|'.join(alternatives)})" + r"[ \t]*\d?")
    new = re.compile(f"(?:{at_word_start(alternatives, not_after)})" + r"[ \t]*\d?")
    rng = random.Random(19)
    for _ in range(3000):
        text = "".join(rng.choice("abcdxy- \t1") for _ in range(rng.randint(0, 30)))
        start = rng.randint(0, len(text))
        assert ([(m.span(), m.group()) for m in old.finditer(text, start)]
                == [(m.span(), m.group()) for m in new.finditer(text, start)]), text
    with pytest.raises(ValueError):
        at_word_start(("[Pp]atient",), r"\w")
    with pytest.raises(ValueError):
        at_word_start(("a?b",), r"\w")
