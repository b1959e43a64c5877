"""Names, dates and ages of a person, found through the words around them.

No name list or NER model is used (none ships offline): a name is one to three capitalised
words right after a title or a label ("Mr.", "Dr.", "Herr", "Frau", "Patient(in)", "Name:",
"Employee:"), and later mentions of a found surname in the same text. A bare "John Smith" in
running text is NOT caught, nor is a famous name used without such a title. A date is
personal only after a birth, admission, discharge, death or visit cue ("DOB", "geb.",
"entlassen am"); birth years before 1900 are treated as history. Ages count only above 89.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator

from appliance.classify.detectors.base import (
    Gate,
    Scan,
    at_word_start,
    match_in_windows,
    words,
)
from appliance.classify.findings import Finding, FindingType

_UPPER = "A-ZÄÖÜ"
_LOWER = "a-zäöüßéèáàóòíìúùñç"
_NAME_WORD = rf"[{_UPPER}](?:'[{_UPPER}])?[{_LOWER}]+(?:[{_UPPER}][{_LOWER}]+)?"
_NAME = (rf"{_NAME_WORD}(?:-{_NAME_WORD})*(?:[ \t]+(?:(?:von|van|de|der|den|zu|da|di|le|la)"
         rf"[ \t]+)?{_NAME_WORD}(?:-{_NAME_WORD})*){{0,2}}")
_TITLES = r"(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Herrn|Herr|Frau|Hr|Fr|Sr|Sra|Mme|Mlle)\.?"
_EXTRA_TITLES = (rf"(?:(?:{_TITLES}|Dipl\.-\w+\.?|Dr\.[ \t]?med\.|med\.|Univ\.[ \t]?Prof\.)"
                 r"[ \t]+)*")
_LABELS = (r"(?:[Pp]atient(?:in)?|[Pp]t\.?|[Rr]esident|[Cc]lient|[Ii]nsured|[Ss]ubscriber|"
           r"[Gg]uarantor|[Ee]mployee|[Mm]itarbeiter(?:in)?|[Vv]ersicherte[rn]?|"
           r"[Bb]ewohner(?:in)?|[Kk]lient(?:in)?|[Ee]mpfänger(?:in)?|[Aa]ntragsteller(?:in)?)")
_NAME_LABELS = (r"(?:(?:[Ff]ull|[Ll]ast|[Ff]irst|[Pp]atient|[Ee]mployee|[Mm]ember|[Cc]ustomer|"
                r"[Cc]ontact|[Ss]ubscriber|[Gg]uarantor)[ \t]+)?[Nn]ame|Nachname|Vorname|"
                r"Familienname|Geburtsname|Ansprechpartner(?:in)?|Kontaktperson|"
                r"Unterschrift|Signed|[Ss]igned[ \t]+by|Attending|Physician|Arzt|Ärztin|"
                r"Pflegekraft|Nurse|Supervisor|Manager|Vorgesetzte[rn]?|Reported[ \t]+by|"
                r"Gemeldet[ \t]+von|Operator|Bediener(?:in)?|Techniker(?:in)?")
#: Capitalised words that follow "Patient" or a title but are not names.
_NOT_NAMES = frozenset({
    "Care", "Safety", "Portal", "Services", "Service", "Information", "Record", "Records",
    "Name", "Education", "Satisfaction", "Experience", "Advocate", "Handbook", "Data", "Room",
    "Zero", "Access", "Transport", "Flow", "Centered", "Engagement", "Rights", "Identifier",
    "Id", "ID", "Number", "No", "Intake", "Summary", "History", "Status", "Consent", "Of",
    "The", "A", "An", "And", "Or", "In", "On", "At", "For", "To", "With", "Is", "Was", "Has",
    "Die", "Der", "Das", "Ein", "Eine", "Und", "Mit", "Ist", "War", "Hat", "Wurde", "Nach",
    "Bei", "Am", "Im", "Vom", "Zur", "Zum", "Seit", "Mai", "Unknown", "Anonymous", "None",
    "Strangelove", "Seuss", "Who", "House", "Jekyll", "Watson", "No.", "Nr", "Nummer",
})
#: The first words of the pattern's alternatives (titles, labels, name labels), lower case.
_STARTS = frozenset("""
mr mrs ms mx miss dr prof herrn herr frau hr fr sr sra mme mlle patient patientin pt resident
client insured subscriber guarantor employee mitarbeiter mitarbeiterin versicherte versicherter
versicherten bewohner bewohnerin klient klientin empfänger empfängerin antragsteller
antragstellerin full last first member customer contact name nachname vorname familienname
geburtsname ansprechpartner ansprechpartnerin kontaktperson unterschrift signed attending
physician arzt ärztin pflegekraft nurse supervisor manager vorgesetzte vorgesetzter vorgesetzten
reported gemeldet operator bediener bedienerin techniker technikerin""".split())
_DATE = (r"(?P<date>\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})(?!\d)|\d{4}-\d{2}-\d{2}"
         r"|\d{1,2}\.?[ \t]+(?:jan|feb|mär|mar|apr|mai|may|jun|jul|aug|sep|okt|oct|nov|dez|dec)"
         r"[a-zä]*\.?,?[ \t]+\d{4}"
         r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?[ \t]+\d{1,2}"
         r"(?:st|nd|rd|th)?,?[ \t]+\d{4})")
_BIRTH_CUES = ("dob", r"d\.o\.b\.?", r"date[ \t]+of[ \t]+birth", r"birth[ \t]?date", "birthday",
               "born", r"geb\.", "geboren", "geburtsdatum", "geburtstag")
_EVENT_CUES = ("admitted", "admission", "admit", "discharged", "discharge",
               r"date[ \t]+of[ \t]+death", "died", "deceased", "expired",
               r"date[ \t]+of[ \t]+service", "dos", "seen", "visit", "appointment", "surgery",
               "procedure", "operated", "aufgenommen", "aufnahme", "entlassen", "entlassung",
               "verstorben", "sterbedatum", "behandlungsdatum", "op-datum", "operiert", "termin",
               "vorstellung")
#: What may not stand just before a birth or event cue.
_NOT_AFTER_CUE = r"\w"

_WORD_SPAN = re.compile(r"\S+")


def _is_word_char(char: str) -> bool:
    """``re``'s ``\\w`` for one character of a ``str`` pattern."""
    return char.isalnum() or char == "_"


def _whole_words(text: str, word: str) -> Iterator[int]:
    """The starts of ``re.finditer(rf"(?<!\\w){re.escape(word)}(?!\\w)", text)``, found with
    ``str.find``: a pattern that begins with a lookbehind is tried at every position."""
    size, at = len(word), text.find(word)
    while at >= 0:
        end = at + size
        if (at == 0 or not _is_word_char(text[at - 1])) and (
                end == len(text) or not _is_word_char(text[end])):
            yield at
            at = text.find(word, end)
        else:
            at = text.find(word, at + 1)


class NameDetector:
    types = frozenset({FindingType.PERSON_NAME.value})
    #: Windows are searched from the title and label words in them, however short: the
    #: pattern's alternation of ~80 words after a lookbehind is slow at every position.
    whole_below = 0

    def __init__(self) -> None:
        self._pattern = re.compile(
            rf"(?<![\w.])(?:{_TITLES}[ \t]+|{_LABELS}[ \t]*:?[ \t]+"
            rf"|(?:{_NAME_LABELS})[ \t]*:[ \t]*)"
            rf"{_EXTRA_TITLES}(?P<name>{_NAME})")
        self.triggers = words(
            "mr", "mrs", "ms", "mx", "miss", "dr", "prof", "herr", "frau", "hr", "fr", "sr",
            "sra", "mme", "mlle", "herrn", "patient", "patientin", "pt", "resident", "client",
            "insured",
            "subscriber", "guarantor", "employee", "mitarbeiter", "mitarbeiterin", "versicherte",
            "versicherter", "versicherten", "bewohner", "bewohnerin", "klient", "klientin",
            "empfänger", "empfängerin", "antragsteller", "antragstellerin", "name", "nachname",
            "vorname", "familienname", "geburtsname", "ansprechpartner", "ansprechpartnerin",
            "kontaktperson", "unterschrift", "signed", "attending", "physician", "arzt", "ärztin",
            "pflegekraft", "nurse", "supervisor", "manager", "vorgesetzte", "vorgesetzter",
            "reported", "gemeldet", "operator", "bediener", "bedienerin", "techniker",
            "technikerin")
        #: the windows are around the triggers; a match may also start at a word that
        #: qualifies a label ("Full Name:"), so those are in the vocabulary too
        self._window_words = self.triggers
        self.triggers = self.triggers | _STARTS
        self.gates = (Gate(words=self._window_words),)

    def _matches(self, scan: Scan) -> Iterator[re.Match[str]]:
        """``finditer`` of the pattern over each window around a trigger word, tried only
        where one of ``_STARTS`` begins: a match starts at a title or label, a whole word (the
        pattern's lookbehind and the space or colon after it see to that) and so one that is
        in ``scan.words``."""
        windows = scan.windows(self._window_words, 2, 120)
        if windows:
            yield from match_in_windows(self._pattern, scan.text, windows,
                                        scan.words & _STARTS, scan.lowered, self.whole_below)

    def find(self, scan: Scan) -> Iterator[Finding]:
        text = scan.text
        surnames: dict[str, None] = {}  # in order of finding (a set's order is the hash's)
        found: list[tuple[int, int]] = []
        for match in self._matches(scan):
            start, end = match.span("name")
            parts = list(_WORD_SPAN.finditer(text, start, end))
            while parts and parts[-1].group() in _NOT_NAMES:
                parts.pop()
            if not parts or parts[0].group() in _NOT_NAMES:
                continue
            end = parts[-1].end()
            found.append((start, end))
            if len(parts) > 1 or not match.group().startswith(("Dr", "Prof")):
                surnames[parts[-1].group()] = None
        for start, end in found:
            yield Finding(FindingType.PERSON_NAME, start, end, 0.75)
        starts = [start for start, _ in found]  # in text order, not overlapping
        for surname in surnames:
            if len(surname) < 3 or text.count(surname) < 2:
                continue
            for start in _whole_words(text, surname):
                at = bisect_right(starts, start) - 1
                if at < 0 or start >= found[at][1]:
                    yield Finding(FindingType.PERSON_NAME, start, start + len(surname), 0.6)


class PersonDateDetector:
    types = frozenset({FindingType.DATE_OF_BIRTH.value, FindingType.PERSON_DATE.value})

    def __init__(self) -> None:
        self._pattern = re.compile(
            f"(?P<cue>{at_word_start(_BIRTH_CUES + _EVENT_CUES, _NOT_AFTER_CUE)})"
            rf"[\w]*[^\n;]{{0,40}}?(?<!\d)(?:[ \t:,(]|am[ \t]|on[ \t]){_DATE}")
        #: Whether a matched cue is a birth cue: one that a birth cue matches whole (the
        #: pattern tries the birth cues first, so it takes one wherever one can match).
        self._birth = re.compile("|".join(_BIRTH_CUES))
        self._year = re.compile(r"(\d{4})|(?<=[./-])(\d{2})$")
        self.triggers = words(
            "dob", "date", "birth", "birthdate", "birthday", "born", "geb", "geboren",
            "geburtsdatum", "geburtstag", "admitted", "admission", "admit", "discharged",
            "discharge", "died", "deceased", "expired", "dos", "seen", "visit", "appointment",
            "surgery", "procedure", "operated", "aufgenommen", "aufnahme", "entlassen",
            "entlassung", "verstorben", "sterbedatum", "behandlungsdatum", "op", "operiert",
            "termin", "vorstellung")
        self.gates = (Gate(digit=True, words=self.triggers),
                      Gate(digit=True, lowered=("d.o.b",)))

    def find(self, scan: Scan) -> Iterator[Finding]:
        if not scan.has_digit:
            return
        windows = scan.windows(self.triggers, 12, 80, ("d.o.b",))
        lowered = scan.lowered
        for match in (m for s, e in windows for m in self._pattern.finditer(lowered, s, e)):
            start, end = match.span("date")
            if self._birth.fullmatch(match.group("cue")):
                year = re.search(r"\d{4}", match.group("date"))
                if year and int(year.group()) < 1900:
                    continue
                yield Finding(FindingType.DATE_OF_BIRTH, start, end, 0.85)
            else:
                yield Finding(FindingType.PERSON_DATE, start, end, 0.8)


class AgeDetector:
    """Ages over 89 (Safe Harbor aggregates them into "90 or older")."""

    types = frozenset({FindingType.AGE_OVER_89.value})

    def __init__(self) -> None:
        self._pattern = re.compile(
            r"(?<![\w])(?:(?:age[ds]?|alter|aged)[ \t]*:?[ \t]*(?:of[ \t]+|von[ \t]+)?"
            r"(?P<a>\d{2,3})"
            r"(?!\d|[.,]\d)|(?P<b>\d{2,3})[ \t-]?(?:years?|yrs?|y)[ \t-]?old"
            r"|(?P<c>\d{2,3})[ \t]?(?:y/o|yo|y\.o\.|j\.)(?!\w)|(?P<d>\d{2,3})[ \t]jahre[ \t]alt"
            r"|(?P<e>\d{2,3})-?jährige[rnms]?)")
        self.triggers = words("age", "ages", "aged", "alter", "old", "yo", "jahre",
                               "jährige", "jähriger", "jährigen", "jähriges", "jährigem")
        self.gates = (Gate(digit=True, words=self.triggers),
                      Gate(digit=True, lowered=("y/o", "y.o.", "j.")))

    def find(self, scan: Scan) -> Iterator[Finding]:
        if not scan.has_digit:
            return
        windows = scan.windows(self.triggers, 12, 12, ("y/o", "y.o.", "j."))
        for match in (m for s, e in windows for m in self._pattern.finditer(scan.lowered, s, e)):
            group = match.lastgroup or "a"
            if 90 <= int(match.group(group)) <= 125:
                yield Finding(FindingType.AGE_OVER_89, match.start(group), match.end(group), 0.85)
