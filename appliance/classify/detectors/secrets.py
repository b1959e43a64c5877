"""Credentials: cloud access keys, vendor API tokens, private key blocks, passwords given in
context, connection strings with a password, and site-configured patterns.

Vendor tokens have fixed prefixes (``AKIA``, ``ghp_``, ``sk-``, ``xoxb-``...), so they are
found anywhere. A password has no layout: it is taken only after a label ("password:",
"Passwort lautet") and only when the value looks like one (a digit or symbol, or 8+ chars of
mixed case), so that "the password is strong" is not a finding.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from appliance.classify.detectors.base import Gate, Scan, words
from appliance.classify.findings import Finding, FindingType

#: Each begins with a plain character, so that ``re`` skips to the few characters that
#: begin a token (a pattern whose alternatives begin with a group or class is tried at every
#: position; ``test_skipping.py`` checks that ``re`` can skip to the token pattern).
_TOKENS: tuple[tuple[FindingType, str], ...] = (
    (FindingType.CLOUD_ACCESS_KEY, r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA)[A-Z0-9]{16}"),
    (FindingType.CLOUD_ACCESS_KEY, r"AccountKey=[A-Za-z0-9+/]{40,}={0,2}"),
    (FindingType.API_KEY, r"gh[pousr]_[A-Za-z0-9]{36,255}"),
    (FindingType.API_KEY, r"github_pat_[A-Za-z0-9_]{22,255}"),
    (FindingType.API_KEY, r"glpat-[A-Za-z0-9_-]{20,}"),
    (FindingType.API_KEY, r"sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-)?[A-Za-z0-9_-]{20,}"),
    (FindingType.API_KEY, r"xox[abposr]-[A-Za-z0-9-]{10,}"),
    (FindingType.API_KEY, r"AIza[0-9A-Za-z_-]{35}"),
    (FindingType.API_KEY, r"sk_(?:live|test)_[A-Za-z0-9]{16,}"),
    (FindingType.API_KEY, r"rk_(?:live|test)_[A-Za-z0-9]{16,}"),
    (FindingType.API_KEY, r"pk_(?:live|test)_[A-Za-z0-9]{16,}"),
    (FindingType.API_KEY, r"hf_[A-Za-z0-9]{30,}"),
    (FindingType.API_KEY, r"npm_[A-Za-z0-9]{36}"),
    (FindingType.API_KEY, r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
)
#: A token starts where no letter, digit or "_" precedes it, so the word its prefix makes
#: ("ghp_..." gives the word "ghp", "sk_live_..." gives "sk") is in ``Scan.words`` whenever one
#: can match; the prefixes that run on into letters are looked for as (case-sensitive) needles.
_TOKEN_WORDS = frozenset({"accountkey", "ghp", "gho", "ghu", "ghs", "ghr", "github", "glpat",
                          "sk", "rk", "pk", "xoxa", "xoxb", "xoxp", "xoxo", "xoxs", "xoxr", "hf",
                          "npm"})
_TOKEN_NEEDLES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "AIPA", "AIza")
#: The labels grouped by first letter, each first letter followed by the word-start check
#: (``(?<![\w-].)``: nothing word-like before it), so that ``re`` skips in C to the few
#: letters a label can start with instead of testing a lookbehind at every position.
_PASSWORD_LABELS = "|".join(
    rf"{first}(?<![\w-].)(?:{rest})" for first, rest in (
        ("p", r"ass(?:word|wort|wd|phrase)?|wd"), ("k", "ennwort"), ("s", "ecret"),
        ("c", r"lient_secret|redentials?"),
        ("a", r"pi[_ -]?key|ccess[_ -]?token|uth[_ -]?token"), ("b", "earer"), ("t", "oken"),
        ("z", "ugangsdaten")))
_API_LABELS = ("api", "token", "bearer")
_MASKED = frozenset("*x•.#")


def _looks_like_password(value: str) -> bool:
    if set(value.lower()) <= _MASKED or value.startswith(("<", "{", "$", "%")):
        return False
    has_digit = any(c.isdigit() for c in value)
    has_symbol = any(not c.isalnum() for c in value)
    mixed = any(c.isupper() for c in value) and any(c.islower() for c in value)
    return has_digit or has_symbol or (mixed and len(value) >= 8)


class SecretDetector:
    types = frozenset({FindingType.CLOUD_ACCESS_KEY.value, FindingType.API_KEY.value,
                       FindingType.PRIVATE_KEY.value, FindingType.PASSWORD.value,
                       FindingType.SECRET.value})

    def __init__(self, extra_patterns: Sequence[str] = ()) -> None:
        # each token ends with an empty group that names it, so that the alternatives begin
        # with their first characters
        self._tokens = re.compile("|".join(f"{p}(?P<t{i}>)" for i, (_, p) in enumerate(_TOKENS)))
        self._token_types = {f"t{i}": t for i, (t, _) in enumerate(_TOKENS)}
        self._private_key = re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*\Z)", re.DOTALL)
        self._password = re.compile(
            rf"(?:{_PASSWORD_LABELS})[\"']?[ \t]*(?:is|lautet|ist|[:=]|=>)[ \t]*"
            r"[\"']?(?P<v>[^\s\"',;]{4,128})")
        self._password_words = words("password", "passwort", "passwd", "pass", "pwd",
                                     "kennwort", "secret", "passphrase", "key", "token",
                                     "bearer", "zugangsdaten", "credentials", "credential",
                                     "client")
        self.triggers = self._password_words | _TOKEN_WORDS
        self._connection = re.compile(r"[a-z][a-z0-9+]{1,15}://[^\s:/@]+:(?P<v>[^\s@/]+)@")
        self._scheme = re.compile(r"[a-z][a-z0-9+]{1,15}://\Z")  # ends at the "://" tried
        self._extra = [re.compile(p) for p in extra_patterns]
        self.gates = (Gate(words=self.triggers),
                      Gate(needles=("eyJ", "-----BEGIN", "://")),
                      # "AKIA...", "AIza...": looked for only where such a shape occurs
                      Gate(layouts=("AAAA", "AAaa"), needles=_TOKEN_NEEDLES, key="layouts"),
                      *([Gate()] if self._extra else []))  # a site pattern may match anything

    def _may_hold_token(self, scan: Scan) -> bool:
        if not scan.words.isdisjoint(_TOKEN_WORDS) or "eyJ" in scan.text:
            return True
        text = scan.text
        return "A" in text and any(needle in text for needle in _TOKEN_NEEDLES)

    def _connections(self, scan: Scan) -> Iterator[Finding]:
        """``finditer`` of the connection pattern, but tried only just before each "://":
        scanning every letter for a scheme costs more than all the other detectors."""
        lowered = scan.lowered
        last_end = 0
        for at in scan.positions("://"):
            if at < last_end:
                continue
            scheme = self._scheme.search(lowered, max(last_end, at - 16), at + 3)
            match = scheme and self._connection.match(lowered, scheme.start())
            if match:
                last_end = match.end()
                yield Finding(FindingType.PASSWORD, match.start("v"), match.end("v"), 0.9)

    def find(self, scan: Scan) -> Iterator[Finding]:
        text, lowered = scan.text, scan.lowered
        if self._may_hold_token(scan):
            for match in self._tokens.finditer(text):
                start = match.start()
                if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
                    continue
                kind = self._token_types[match.lastgroup or ""]
                yield Finding(kind, start, match.end(), 0.97)
        if "-----begin" in lowered:
            for match in self._private_key.finditer(text):
                yield Finding(FindingType.PRIVATE_KEY, match.start(), match.end(), 0.99)
        windows = scan.windows(self._password_words, 20, 150)
        for match in (m for s, e in windows for m in self._password.finditer(lowered, s, e)):
            start, end = match.span("v")
            if _looks_like_password(text[start:end]):
                label = lowered[match.start():start]
                kind = FindingType.API_KEY if any(a in label for a in _API_LABELS) \
                    else FindingType.PASSWORD
                yield Finding(kind, start, end, 0.8)
        if "://" in text:
            yield from self._connections(scan)
        yield from self.site_findings(text)

    @property
    def has_site_patterns(self) -> bool:
        return bool(self._extra)

    def site_findings(self, text: str) -> Iterator[Finding]:
        """The matches of the site's secret patterns (the last of ``find``'s findings; the
        compiled core runs the rest and merges these)."""
        for pattern in self._extra:
            for match in pattern.finditer(text):
                if match.end() > match.start():
                    yield Finding(FindingType.SECRET, match.start(), match.end(), 0.9)
