"""The detectors, built once from the site configuration.

``build_detectors`` is the one place that lists them; the classifier runs them in this order
and knows nothing about any of them.
"""

from __future__ import annotations

from appliance.classify.config import ClassifyConfig
from appliance.classify.detectors.addresses import AddressDetector
from appliance.classify.detectors.base import Detector, Gate, Scan, Vocabulary
from appliance.classify.detectors.codes import IbanDetector, MbiDetector, VinDetector
from appliance.classify.detectors.gates import Gates
from appliance.classify.detectors.labelled import LabelledDetector
from appliance.classify.detectors.network import EmailDetector, IpAddressDetector, UrlDetector
from appliance.classify.detectors.numbers import PaymentCardDetector, PhoneDetector, SsnDetector
from appliance.classify.detectors.people import AgeDetector, NameDetector, PersonDateDetector
from appliance.classify.detectors.secrets import SecretDetector

__all__ = ["Detector", "Gate", "Gates", "Scan", "Vocabulary", "build_detectors"]


def build_detectors(config: ClassifyConfig) -> list[Detector]:
    """Compiles every pattern (site patterns included); detectors whose types are all
    disabled are left out."""
    enabled = config.enabled_types()
    candidates: list[Detector] = [
        SecretDetector(config.secret_patterns), EmailDetector(), UrlDetector(),
        IpAddressDetector(), SsnDetector(), PaymentCardDetector(), PhoneDetector(),
        IbanDetector(), MbiDetector(), VinDetector(),
        LabelledDetector(enabled, config.mrn_patterns), NameDetector(), PersonDateDetector(),
        AgeDetector(), AddressDetector(),
    ]
    return [d for d in candidates if not d.types.isdisjoint(enabled)]
