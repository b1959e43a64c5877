"""The ``[classify]`` section: what the sensitivity classifier looks for at this site.

Validated when the configuration is loaded, like every other section: an unknown key, an
unknown finding type or a regular expression that does not compile stops the daemon with a
message naming the key, instead of silently classifying less.
"""

from __future__ import annotations

import re

import msgspec

from appliance.classify.findings import FindingType


class ClassifyConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Site settings of the classifier (``[classify]`` in ``appliance.toml``)."""

    #: Regular expressions (Python syntax) for this site's medical record numbers, matched
    #: anywhere in the text, e.g. ``"\\bKH-\\d{8}\\b"``. Generic "MRN: ..." labels are always on.
    mrn_patterns: tuple[str, ...] = ()
    #: Regular expressions for site secrets (internal token formats), reported as ``secret``.
    secret_patterns: tuple[str, ...] = ()
    #: Finding types not to look for (see ``appliance.classify.FindingType``), e.g. ``["url"]``.
    disabled_types: tuple[str, ...] = ()
    #: Names after titles and labels ("Mr.", "Patient:", "Frau"); off for sites whose texts
    #: are full of product names after such words.
    detect_names: bool = True

    def __post_init__(self) -> None:
        # msgspec turns a ValueError here into a ValidationError at ``classify``; the message
        # names the key inside the section.
        for key in ("mrn_patterns", "secret_patterns"):
            for i, pattern in enumerate(getattr(self, key)):
                try:
                    compiled = re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"`{key}[{i}]` is not a valid regular expression: {exc}"
                                     ) from None
                if compiled.match(""):
                    raise ValueError(f"`{key}[{i}]` matches the empty string")
        known = {t.value for t in FindingType}
        for i, name in enumerate(self.disabled_types):
            if name not in known:
                raise ValueError(f"`disabled_types[{i}]`: unknown finding type {name!r}; "
                                 f"expected one of {', '.join(sorted(known))}")

    def enabled_types(self) -> frozenset[str]:
        enabled = {t.value for t in FindingType} - set(self.disabled_types)
        if not self.detect_names:
            enabled.discard(FindingType.PERSON_NAME.value)
        return frozenset(enabled)
