"""What the classifier returns (its own module, so that the compiled core's wiring in
``native.py`` can make these objects without importing the classifier)."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.classify.findings import Finding, Sensitivity


@dataclass(frozen=True, slots=True)
class Classification:
    """The level of one text, and where its identifiers are (never what they are)."""

    sensitivity: Sensitivity
    findings: tuple[Finding, ...]

    def level_with_declared(self, declared: str | None) -> Sensitivity:
        """The stricter of the detected level and ``declared`` (``x-data-classification`` or
        the app's default). Raises ``ValueError`` for an unknown name."""
        if declared is None or not declared.strip():
            return self.sensitivity
        return max(self.sensitivity, Sensitivity.parse(declared))


@dataclass(frozen=True, slots=True)
class ConversationClassification:
    """The level of a conversation as a whole; ``findings`` pairs each finding with the index
    of the text (message) whose span it gives."""

    sensitivity: Sensitivity
    findings: tuple[tuple[int, Finding], ...]

    def level_with_declared(self, declared: str | None) -> Sensitivity:
        if declared is None or not declared.strip():
            return self.sensitivity
        return max(self.sensitivity, Sensitivity.parse(declared))


#: The result for a text with no finding (immutable, so one object serves every call).
NOTHING = Classification(Sensitivity.PUBLIC, ())
