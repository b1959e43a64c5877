"""Sensitivity classification of prompts: which HIPAA Safe Harbor identifiers, payment data,
secrets and network identifiers a text carries, and what level that gives it.

    classifier = Classifier(config.classify)        # at start: compiles every pattern
    result = classifier.classify(text)               # Classification(sensitivity, findings)
    level = result.level_with_declared(header)       # a declaration raises, never lowers

Findings carry a type, a span and a confidence, never the value.
"""

from appliance.classify.classifier import Classifier
from appliance.classify.result import Classification, ConversationClassification
from appliance.classify.config import ClassifyConfig
from appliance.classify.findings import BASE_LEVEL, Finding, FindingType, Sensitivity, max_level

__all__ = [
    "BASE_LEVEL", "Classification", "Classifier", "ClassifyConfig",
    "ConversationClassification", "Finding", "FindingType", "Sensitivity", "max_level",
]
