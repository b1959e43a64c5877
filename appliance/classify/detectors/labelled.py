"""Values announced by a label: "MRN: 00123456", "Member ID W123456789", "Kontonummer 1234",
"S/N: A7-2231", "NPI 1234567893".

Most record, account, licence and serial numbers have no fixed layout, so the label is the
evidence; the value must contain a digit. Where a layout or check digit exists (NPI, DEA,
KVNR, SSN) it is checked too. Site-specific MRN layouts come from config (``mrn_patterns``)
and are matched anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from appliance.classify.checksums import dea_valid, kvnr_valid, npi_valid, ssn_valid
from appliance.classify.detectors.base import Gate, Scan, at_word_start
from appliance.classify.findings import Finding, FindingType

_NUMBER = r"(?:[ \t]*(?:number|numbers|no\.?|nr\.?|num\.?|#|id|code))?"
_SEP = r"[ \t]*(?:[:#=]|is|lautet)?[ \t]*(?:[:#][ \t]*)?"
_VALUE = r"[a-z0-9][a-z0-9/.-]{2,28}[a-z0-9]"
#: What may not stand just before a label.
_NOT_AFTER = r"[\w-]"
_PLAN_NUMBER = r"[ \t]*(?:id|number|no\.?|nr\.?|#)"
#: ``Scan.has_digit``: an ASCII digit.
_ASCII_DIGIT = re.compile("[0-9]")


@dataclass(frozen=True, slots=True)
class _Kind:
    type: FindingType
    triggers: frozenset[str]
    #: The labels, one alternative each, in the order they are tried; each begins with a
    #: plain lower-case character (see ``at_word_start``).
    labels: tuple[str, ...]
    value: str = _VALUE
    #: Checks the value as written (original case); None accepts any value with a digit.
    check: Callable[[str], bool] | None = None
    #: Reported instead when ``check`` fails; None drops the candidate.
    fallback: FindingType | None = None
    #: Substrings that also trigger the kind (labels that are not words, such as "S/N").
    needles: tuple[str, ...] = ()


_KINDS = (
    _Kind(FindingType.MRN, frozenset({"mrn", "medical", "chart", "patient", "patienten",
                                      "patientennummer", "fallnummer", "fall", "record",
                                      "aktenzeichen", "pid", "krankenblattnummer"}),
          ("mrn", r"medical[ \t]+record(?:s)?" + _NUMBER, r"med\.?[ \t]*rec\.?" + _NUMBER,
           "chart" + _NUMBER, r"patient(?:en)?[ \t-]*(?:id|nummer|nr\.?|identifier)",
           r"patient[ \t]+record" + _NUMBER, "fallnummer", r"fall-?nr\.?", "aktenzeichen",
           "pid", "krankenblattnummer")),
    _Kind(FindingType.DE_KVNR, frozenset({"versichertennummer", "krankenversichertennummer",
                                          "kvnr", "kv", "versicherten"}),
          ("krankenversichertennummer", "versichertennummer", "kvnr", r"kv-nr\.?",
           r"versicherten-?nr\.?"),
          value=r"[a-z]\d{9}", check=kvnr_valid, fallback=FindingType.HEALTH_PLAN_ID),
    _Kind(FindingType.MEDICARE_MBI, frozenset({"mbi", "medicare"}),
          ("mbi", r"medicare(?:[ \t]+beneficiary)?(?:[ \t]+identifier)?" + _NUMBER),
          check=lambda v: len(v.replace("-", "")) == 11, fallback=FindingType.HEALTH_PLAN_ID),
    _Kind(FindingType.HEALTH_PLAN_ID, frozenset({"member", "membership", "subscriber",
                                                 "policy", "group", "insurance", "beneficiary",
                                                 "plan", "medicaid", "versicherungsnummer",
                                                 "mitgliedsnummer", "insured", "coverage"}),
          (*(word + _PLAN_NUMBER for word in (
              "member(?:ship)?", "subscriber", "policy", "group", "insurance", "insured",
              "beneficiary", r"health[ \t]+plan", "plan", "medicaid", "coverage")),
           "versicherungsnummer", "mitgliedsnummer", r"versicherungs-?nr\.?")),
    _Kind(FindingType.SSN, frozenset({"ssn", "social", "ss"}),
          ("ssn", r"social[ \t]+security" + _NUMBER, "ss#"),
          value=r"\d{3}[ -]?\d{2}[ -]?\d{4}", check=ssn_valid),
    _Kind(FindingType.NPI, frozenset({"npi"}), ("npi" + _NUMBER,), value=r"\d{10}",
          check=npi_valid),
    _Kind(FindingType.DEA_NUMBER, frozenset({"dea"}),
          ("dea" + _NUMBER, r"dea[ \t]+registration" + _NUMBER),
          value=r"[a-z][a-z9]\d{7}", check=dea_valid),
    _Kind(FindingType.ACCOUNT_NUMBER, frozenset({"account", "acct", "kontonummer", "konto",
                                                 "kundennummer", "customer", "routing", "aba",
                                                 "billing", "guarantor"}),
          ("account" + _NUMBER, r"acct\.?" + _NUMBER, "a/c", "kontonummer", r"konto-?nr\.?",
           "kundennummer", r"kunden-?nr\.?", r"customer[ \t]*(?:id|number|no\.?|#)",
           "routing" + _NUMBER, "aba" + _NUMBER, r"billing[ \t]+(?:id|account)",
           r"guarantor[ \t]+(?:id|number)")),
    _Kind(FindingType.LICENSE_NUMBER, frozenset({"license", "licence", "lic", "certificate",
                                                 "cert", "führerschein", "lanr", "permit",
                                                 "passport", "reisepass", "personalausweis",
                                                 "ausweisnummer", "approbation", "registration",
                                                 "steuer", "steuernummer", "plate", "kennzeichen",
                                                 "identifikationsnummer", "ausweis"}),
          (r"driver'?s?[ \t]+licen[cs]e" + _NUMBER, r"licen[cs]e" + _NUMBER,
           r"lic\.?[ \t]*(?:no\.?|#)", "certificate" + _NUMBER, r"cert\.?[ \t]*(?:no\.?|#)",
           "führerschein(?:nummer)?", "lanr", "permit" + _NUMBER, "passport" + _NUMBER,
           "reisepass(?:nummer)?", "personalausweis(?:nummer)?", "ausweisnummer",
           "approbationsnummer", "steuer-?id", "steuernummer",
           r"steuerliche[ \t]+identifikationsnummer", r"licen[cs]e[ \t]+plate", "kennzeichen",
           "registration" + _NUMBER)),
    _Kind(FindingType.VIN, frozenset({"vin", "fahrgestellnummer", "fin"}),
          ("vin", "fahrgestellnummer", "fin"), value=r"[a-hj-npr-z0-9]{17}"),
    _Kind(FindingType.DEVICE_ID, frozenset({"serial", "sn", "seriennummer", "serien",
                                            "device", "imei", "udi", "asset", "inventarnummer",
                                            "geräte", "gerätenummer", "geräteid", "hostname",
                                            "tag", "machine", "maschine"}),
          ("serial" + _NUMBER, "s/n", "sn", "seriennummer", r"serien-?nr\.?",
           r"device[ \t]*(?:id|serial)", "imei", "udi", r"asset[ \t]*(?:tag|id|number|no\.?)",
           "inventarnummer", r"inventar-?nr\.?", r"geräte-?(?:id|nummer|nr\.?)",
           r"machine[ \t]+id", r"maschinen-?(?:id|nummer|nr\.?)"),
          needles=("s/n",)),
    _Kind(FindingType.ZIP_CODE, frozenset({"zip", "plz", "postleitzahl", "postal"}),
          (r"zip(?:[ \t]*code)?", "postleitzahl", "plz", r"postal[ \t]+code"),
          value=r"\d{5}(?:-\d{4})?"),
)


class LabelledDetector:
    types = frozenset(kind.type.value for kind in _KINDS) | {FindingType.HEALTH_PLAN_ID.value}

    def __init__(self, enabled: frozenset[str], site_mrn_patterns: Sequence[str] = ()) -> None:
        self._kinds = [
            (kind, re.compile(f"(?:{at_word_start(kind.labels, _NOT_AFTER)}){_SEP}"
                              rf"(?P<v>{kind.value})(?![\w-]*[\w])"))
            for kind in _KINDS if kind.type.value in enabled
        ]
        self.triggers: frozenset[str] = frozenset[str]().union(*(kind.triggers for kind, _ in self._kinds))
        self._needles = tuple(n for kind, _ in self._kinds for n in kind.needles)
        #: trigger word -> the kinds (indices into ``_kinds``) it triggers
        self._kinds_of: dict[str, list[int]] = {}
        for index, (kind, _) in enumerate(self._kinds):
            for word in kind.triggers:
                self._kinds_of.setdefault(word, []).append(index)
        self._site_mrn = [re.compile(p) for p in site_mrn_patterns] \
            if FindingType.MRN.value in enabled else []
        self.gates = (Gate(digit=True, words=self.triggers),
                      *([Gate(digit=True, lowered=self._needles)] if self._needles else []),
                      *([Gate(digit=True)] if self._site_mrn else []))

    def find(self, scan: Scan) -> Iterator[Finding]:
        if not scan.has_digit:
            return
        # only the kinds whose trigger words or needles occur (in their order)
        active = {index for word in scan.words & self.triggers
                  for index in self._kinds_of[word]}
        if self._needles and any(needle in scan.lowered for needle in self._needles):
            active.update(index for index, (kind, _) in enumerate(self._kinds) if kind.needles)
        for kind, pattern in (self._kinds[index] for index in sorted(active)):
            windows = scan.windows(kind.triggers, 40, 80, kind.needles)
            if not windows:
                continue
            lowered = scan.lowered
            for match in (m for s, e in windows for m in pattern.finditer(lowered, s, e)):
                start, end = match.span("v")
                value = scan.text[start:end]
                if not any(c.isdigit() for c in value):
                    continue
                if kind.check is None or kind.check(value):
                    yield Finding(kind.type, start, end, 0.9)
                elif kind.fallback is not None:
                    yield Finding(kind.fallback, start, end, 0.7)
        yield from self.site_findings(scan.text)

    @property
    def has_site_patterns(self) -> bool:
        return bool(self._site_mrn)

    def site_findings(self, text: str) -> Iterator[Finding]:
        """The matches of the site's MRN patterns (the last of ``find``'s findings; the
        compiled core runs the rest and merges these); like every labelled value, only in
        a text with a digit."""
        if not self._site_mrn or _ASCII_DIGIT.search(text) is None:
            return
        for pattern in self._site_mrn:
            for match in pattern.finditer(text):
                if match.end() > match.start():
                    yield Finding(FindingType.MRN, match.start(), match.end(), 0.9)
