"""Redaction of a request's identifiers for a zone its sensitivity may not reach, and
re-identification of the answer on its way back to the client.

    redaction = Redaction.of(texts, findings)   # findings: (text index, Finding), as classified
    redaction.texts                              # the texts with typed placeholders
    upstream_request = redaction.apply(request)  # what the forbidden zone is sent
    answer = redaction.reidentify(reply)         # placeholders -> the client's values
    restore = redaction.restorer()               # the same across stream chunks:
    out = [restore.feed(chunk) for chunk in chunks] + [restore.flush()]

Each identifier becomes a placeholder typed after its finding and numbered per type in order
of first appearance (``[PERSON_1]``, ``[MRN_1]``, ``[SSN_2]``). A value gets the same
placeholder wherever it occurs in the request (every message, the stop sequences), including
repetitions the classifier did not flag on their own, so the model can still tell who is who.

The mapping from placeholders to values lives in this object only, for the life of one
request: its ``repr`` shows counts, never values, and the audit log receives redacted texts.
Placeholders a model invents (``[PERSON_7]`` when there were two persons) pass through
unchanged; a model that rewrites a placeholder (``PERSON_1`` without brackets) gets it back
as written.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import TypeVar

from appliance.classify import Finding
from appliance.types import EmbeddingRequest, GenerationRequest, Message

#: Placeholder labels of the finding types (``appliance.classify.FindingType``); a type not
#: listed is labelled with its name in capitals.
LABELS: dict[str, str] = {
    "person_name": "PERSON", "street_address": "ADDRESS", "zip_code": "ZIP",
    "date_of_birth": "DOB", "person_date": "DATE", "age_over_89": "AGE", "phone": "PHONE",
    "fax": "FAX", "email": "EMAIL", "ssn": "SSN", "mrn": "MRN",
    "health_plan_id": "HEALTH_PLAN_ID", "medicare_mbi": "MBI", "de_kvnr": "KVNR",
    "account_number": "ACCOUNT", "iban": "IBAN", "payment_card": "CARD",
    "license_number": "LICENSE", "npi": "NPI", "dea_number": "DEA", "vin": "VIN",
    "device_id": "DEVICE_ID", "url": "URL", "internal_url": "INTERNAL_URL",
    "ip_address": "IP", "cloud_access_key": "ACCESS_KEY", "api_key": "API_KEY",
    "private_key": "PRIVATE_KEY", "password": "PASSWORD", "secret": "SECRET",
}

#: What a placeholder looks like; only those this request handed out are replaced.
_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*_[0-9]+\]")
#: Values shorter than this are replaced only where the classifier found them: elsewhere a
#: two-character value ("Li", "92") would mostly hit words and numbers that are not it.
_MIN_REPEAT = 3

Request = GenerationRequest | EmbeddingRequest
R = TypeVar("R", bound=GenerationRequest | EmbeddingRequest)


def label(finding_type: str) -> str:
    """``person_name`` -> ``PERSON``."""
    return LABELS.get(finding_type) or re.sub(r"[^A-Z0-9]+", "_", finding_type.upper())


def request_texts(request: Request) -> list[str]:
    """The texts a model sees, in the order the classifier indexes its findings by."""
    if isinstance(request, EmbeddingRequest):
        return list(request.inputs)
    if request.messages is not None:
        return [m.content for m in request.messages]
    return [request.prompt or ""]


def _merge(findings: Iterable[Finding]) -> list[tuple[int, int, str]]:
    """Spans in order with overlapping ones merged into one, typed after the strongest
    finding among them (then the longest), so no part of any identifier survives."""
    spans: list[tuple[int, int, Finding]] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if f.end <= f.start:
            continue
        if spans and f.start < spans[-1][1]:
            start, end, strongest = spans[-1]
            if (f.level(), f.end - f.start) > (strongest.level(),
                                               strongest.end - strongest.start):
                strongest = f
            spans[-1] = (start, max(end, f.end), strongest)
        else:
            spans.append((f.start, f.end, f))
    return [(start, end, f.type) for start, end, f in spans]


class Redaction:
    """One request's placeholders. Build it with ``of``; it is not shared between requests."""

    def __init__(self, originals: Sequence[str] = ()) -> None:
        #: Placeholders the client's own texts contain: never handed out.
        self._taken = {p for text in originals for p in _PLACEHOLDER.findall(text)}
        self._by_value: dict[str, str] = {}
        self._by_placeholder: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._repeats: re.Pattern[str] | None = None
        #: The texts with their identifiers replaced (``of`` fills it).
        self.texts: list[str] = []

    @classmethod
    def of(cls, texts: Sequence[str], findings: Iterable[tuple[int, Finding]]) -> Redaction:
        """Redact ``texts`` given where their identifiers are (``ConversationClassification
        .findings``): placeholders are numbered over all texts in order."""
        by_text: list[list[Finding]] = [[] for _ in texts]
        for index, finding in findings:
            by_text[index].append(finding)
        redaction = cls(texts)
        spans = [_merge(found) for found in by_text]
        for text, text_spans in zip(texts, spans):
            for start, end, kind in text_spans:
                redaction._assign(text[start:end], kind)
        redaction.texts = [redaction._replace(text, text_spans)
                           for text, text_spans in zip(texts, spans)]
        return redaction

    def __repr__(self) -> str:  # never the values: a context may end up in a log
        return f"<Redaction of {len(self._by_value)} identifiers>"

    def __bool__(self) -> bool:
        return bool(self._by_value)

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(self._by_placeholder)

    @property
    def longest(self) -> int:
        """The length of the longest placeholder (0 when nothing was redacted)."""
        return max(map(len, self._by_placeholder), default=0)

    def _assign(self, value: str, kind: str) -> str:
        if not value.strip():
            return value
        placeholder = self._by_value.get(value)
        if placeholder is None:
            name = label(kind)
            while True:  # skip a placeholder the client's own text already contains
                self._counts[name] = self._counts.get(name, 0) + 1
                placeholder = f"[{name}_{self._counts[name]}]"
                if placeholder not in self._taken:
                    break
            self._by_value[value] = placeholder
            self._by_placeholder[placeholder] = value
            self._repeats = None
        return placeholder

    def _replace(self, text: str, spans: Sequence[tuple[int, int, str]]) -> str:
        """The flagged spans by their placeholders, known values elsewhere by theirs."""
        out: list[str] = []
        at = 0
        for start, end, kind in spans:
            out.append(self._mask_repeats(text[at:start]))
            out.append(self._assign(text[start:end], kind))
            at = end
        out.append(self._mask_repeats(text[at:]))
        return "".join(out)

    def _mask_repeats(self, text: str) -> str:
        if self._repeats is None:
            values = sorted((v for v in self._by_value if len(v.strip()) >= _MIN_REPEAT),
                            key=len, reverse=True)
            if not values:
                return text
            self._repeats = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, values))
                                       + r")(?!\w)")
        return self._repeats.sub(lambda m: self._by_value[m.group(0)], text)

    def mask(self, text: str, findings: Iterable[Finding] = ()) -> str:
        """Another text of the same request (a stop sequence, the answer for the audit log)
        with the request's values and its own ``findings`` replaced by placeholders."""
        spans = _merge(findings)
        for start, end, kind in spans:
            self._assign(text[start:end], kind)
        return self._replace(text, spans)

    def apply(self, request: R) -> R:
        """``request`` as the forbidden zone may see it: redacted texts and stop sequences."""
        if isinstance(request, EmbeddingRequest):
            return dataclasses.replace(request, inputs=list(self.texts))
        sampling = dataclasses.replace(request.sampling,
                                       stop=[self.mask(s) for s in request.sampling.stop])
        if request.messages is not None:
            messages = [Message(m.role, text) for m, text in zip(request.messages, self.texts)]
            return dataclasses.replace(request, messages=messages, sampling=sampling)
        return dataclasses.replace(request, prompt=self.texts[0], sampling=sampling)

    def reidentify(self, text: str) -> str:
        """Each placeholder this request handed out back to its value; others unchanged."""
        if not self._by_placeholder or "[" not in text:
            return text
        return _PLACEHOLDER.sub(lambda m: self._by_placeholder.get(m.group(0), m.group(0)),
                                text)

    def restorer(self) -> StreamRestorer:
        return StreamRestorer(self)


class StreamRestorer:
    """Re-identification of a stream: a chunk that ends with what may be the beginning of one
    of the request's placeholders holds that part back (fewer characters than the longest
    placeholder) until the next chunk tells; ``flush`` returns what is left at the end."""

    def __init__(self, redaction: Redaction) -> None:
        self._redaction = redaction
        self._window = max(redaction.longest - 1, 0)
        self._prefixes = frozenset(p[:n] for p in redaction.placeholders
                                   for n in range(1, len(p)))
        self._pending = ""

    def feed(self, chunk: str) -> str:
        text = self._pending + chunk
        self._pending = ""
        # Placeholders hold one "[" (their first character), so only the last one can start
        # a placeholder that the next chunk completes.
        start = text.rfind("[", max(len(text) - self._window, 0)) if self._window else -1
        if start != -1 and text[start:] in self._prefixes:
            text, self._pending = text[:start], text[start:]
        return self._redaction.reidentify(text)

    def flush(self) -> str:
        """What was held back (a placeholder's beginning that was never completed)."""
        text, self._pending = self._pending, ""
        return text
