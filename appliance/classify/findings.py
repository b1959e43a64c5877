"""What a detector reports, and how much each kind of report weighs.

A ``Finding`` is a type, a span and a confidence, never the matched value: the classifier runs
on prompts that the appliance must not copy anywhere, so nothing here can leak them into logs,
audit records or error messages. Callers that need the value slice the text they already hold.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Sensitivity(enum.IntEnum):
    """Ordered levels; ``max()`` of two levels is the stricter one."""

    PUBLIC = 0
    INTERNAL = 1
    CONFIDENTIAL = 2
    RESTRICTED = 3

    @classmethod
    def parse(cls, value: str) -> Sensitivity:
        """``"Confidential"`` -> ``CONFIDENTIAL``; anything else is a ``ValueError`` that lists
        the accepted names (the value itself is short and client-chosen, so it may be shown)."""
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(level.label for level in cls)
            raise ValueError(f"unknown data classification {value[:40]!r}; expected one of "
                             f"{names}") from None

    @property
    def label(self) -> str:
        return self.name.lower()

    def __str__(self) -> str:
        return self.label


def max_level(*levels: Sensitivity) -> Sensitivity:
    """The strictest of ``levels``; ``PUBLIC`` for none."""
    return max(levels, default=Sensitivity.PUBLIC)


class FindingType(enum.StrEnum):
    """Every type a detector can report; the strings are the CLI's and the audit log's."""

    PERSON_NAME = "person_name"
    STREET_ADDRESS = "street_address"
    ZIP_CODE = "zip_code"
    DATE_OF_BIRTH = "date_of_birth"
    PERSON_DATE = "person_date"  # admission, discharge, death, date of service
    AGE_OVER_89 = "age_over_89"
    PHONE = "phone"
    FAX = "fax"
    EMAIL = "email"
    SSN = "ssn"
    MRN = "mrn"
    HEALTH_PLAN_ID = "health_plan_id"
    MEDICARE_MBI = "medicare_mbi"
    DE_KVNR = "de_kvnr"  # Krankenversichertennummer
    ACCOUNT_NUMBER = "account_number"
    IBAN = "iban"
    PAYMENT_CARD = "payment_card"
    LICENSE_NUMBER = "license_number"
    NPI = "npi"
    DEA_NUMBER = "dea_number"
    VIN = "vin"
    DEVICE_ID = "device_id"  # serial numbers, IMEI, MAC addresses, UDI
    URL = "url"
    INTERNAL_URL = "internal_url"  # a URL whose host is a private address or intranet name
    IP_ADDRESS = "ip_address"
    CLOUD_ACCESS_KEY = "cloud_access_key"
    API_KEY = "api_key"
    PRIVATE_KEY = "private_key"
    PASSWORD = "password"
    SECRET = "secret"  # a site-configured secret pattern


_R, _C, _I = Sensitivity.RESTRICTED, Sensitivity.CONFIDENTIAL, Sensitivity.INTERNAL

#: The level a finding gives on its own. Health context raises identifiers of a person to
#: ``RESTRICTED`` (see ``PERSONAL_TYPES``); government identifiers, payment cards and anything
#: that exists only because a person has a health record are restricted by themselves.
BASE_LEVEL: dict[str, Sensitivity] = {
    FindingType.PERSON_NAME: _C,
    FindingType.STREET_ADDRESS: _C,
    FindingType.ZIP_CODE: _C,
    FindingType.DATE_OF_BIRTH: _C,
    FindingType.PERSON_DATE: _C,
    FindingType.AGE_OVER_89: _C,
    FindingType.PHONE: _C,
    FindingType.FAX: _C,
    FindingType.EMAIL: _C,
    FindingType.SSN: _R,
    FindingType.MRN: _R,
    FindingType.HEALTH_PLAN_ID: _R,
    FindingType.MEDICARE_MBI: _R,
    FindingType.DE_KVNR: _R,
    FindingType.ACCOUNT_NUMBER: _C,
    FindingType.IBAN: _C,
    FindingType.PAYMENT_CARD: _R,
    FindingType.LICENSE_NUMBER: _C,
    FindingType.NPI: _I,  # a provider's number, published in the NPPES registry
    FindingType.DEA_NUMBER: _C,
    FindingType.VIN: _C,
    FindingType.DEVICE_ID: _I,
    FindingType.URL: _I,
    FindingType.INTERNAL_URL: _C,
    FindingType.IP_ADDRESS: _C,
    FindingType.CLOUD_ACCESS_KEY: _C,
    FindingType.API_KEY: _C,
    FindingType.PRIVATE_KEY: _C,
    FindingType.PASSWORD: _C,
    FindingType.SECRET: _C,
}

#: Identifiers of a person (HIPAA Safe Harbor): next to health information they make the text
#: protected health information, hence ``RESTRICTED``. Secrets and provider numbers are not.
PERSONAL_TYPES: frozenset[str] = frozenset(BASE_LEVEL) - {
    FindingType.NPI, FindingType.DEA_NUMBER, FindingType.CLOUD_ACCESS_KEY,
    FindingType.API_KEY, FindingType.PRIVATE_KEY, FindingType.PASSWORD, FindingType.SECRET,
    FindingType.URL,
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected identifier: ``text[start:end]`` in the text that was classified."""

    type: str
    start: int
    end: int
    confidence: float

    def level(self) -> Sensitivity:
        """The base level of this type; an unknown type counts as confidential."""
        return BASE_LEVEL.get(self.type, Sensitivity.CONFIDENTIAL)
