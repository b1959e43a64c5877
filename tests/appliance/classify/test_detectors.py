"""Each detector's positives, with the exact span, and near misses that must stay silent."""

import pytest

from appliance.classify import Classifier, ClassifyConfig


@pytest.fixture(scope="module", params=[True, False], ids=["core", "python"])
def classifier(request: pytest.FixtureRequest) -> Classifier:
    return Classifier(native=request.param)


def found(classifier: Classifier, text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start:f.end]) for f in classifier.classify(text).findings]


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("SSN 123-45-6789 on file", "ssn", "123-45-6789"),
    ("social security number: 123456789", "ssn", "123456789"),
    ("card 4111-1111-1111-1111 exp 12/27", "payment_card", "4111-1111-1111-1111"),
    ("call (555) 234-5678 today", "phone", "(555) 234-5678"),
    ("Tel.: 030 12345678", "phone", "030 12345678"),
    ("Fax: +49 (0) 30 1234567", "fax", "+49 (0) 30 1234567"),
    ("mail jane.doe+x@example.org.", "email", "jane.doe+x@example.org"),
    ("see https://portal.example.com/a?b=1.", "url", "https://portal.example.com/a?b=1"),
    ("see http://grafana.local:3000/d/x", "internal_url", "http://grafana.local:3000/d/x"),
    ("host 192.168.10.5 down", "ip_address", "192.168.10.5"),
    ("addr fe80::1ff:fe23:4567:890a up", "ip_address", "fe80::1ff:fe23:4567:890a"),
    ("MAC 00:1A:2B:3C:4D:5E", "device_id", "00:1A:2B:3C:4D:5E"),
    ("IBAN DE89 3704 0044 0532 0130 00.", "iban", "DE89 3704 0044 0532 0130 00"),
    ("MBI 1EG4-TE5-MK73 active", "medicare_mbi", "1EG4-TE5-MK73"),
    ("VIN 1M8GDM9AXKP042788", "vin", "1M8GDM9AXKP042788"),
    ("MRN: A-0012345", "mrn", "A-0012345"),
    ("Medical record number 00998877", "mrn", "00998877"),
    ("Versichertennummer: A123456780", "de_kvnr", "A123456780"),
    ("Member ID XYZ123456789", "health_plan_id", "XYZ123456789"),
    ("NPI 1234567893", "npi", "1234567893"),
    ("DEA no. AB1234563", "dea_number", "AB1234563"),
    ("Account No. 00412345678", "account_number", "00412345678"),
    ("Kontonummer 1234567", "account_number", "1234567"),
    ("License #: D1234567", "license_number", "D1234567"),
    ("S/N: A7-22319", "device_id", "A7-22319"),
    ("Patient John Smith was seen", "person_name", "John Smith"),
    ("Frau Dr. Anna Schmidt-Weber kam", "person_name", "Anna Schmidt-Weber"),
    ("DOB: 03/14/1950", "date_of_birth", "03/14/1950"),
    ("geb. 14.03.1950 in Köln", "date_of_birth", "14.03.1950"),
    ("entlassen am 2. Mai 2024", "person_date", "2. mai 2024"[:0] or "2. Mai 2024"),
    ("a 93-year-old man", "age_over_89", "93"),
    ("1200 Oak Street Apt. 4", "street_address", "1200 Oak Street Apt. 4"),
    ("Springfield, IL 62704", "zip_code", "62704"),
    ("Hauptstraße 12\n10115 Berlin", "zip_code", "10115"),
    ("key AKIAIOSFODNN7EXAMPLE", "cloud_access_key", "AKIAIOSFODNN7EXAMPLE"),
    ("token ghp_" + "a" * 36, "api_key", "ghp_" + "a" * 36),
    ("password: Tr0ub4dor&3", "password", "Tr0ub4dor&3"),
])
def test_positive(classifier: Classifier, text: str, kind: str, value: str) -> None:
    assert (kind, value) in found(classifier, text)


@pytest.mark.parametrize("text", [
    "SSN-like part 666-12-3456",            # invalid area
    "order 4111 1111 1111 1112",           # Luhn fails
    "version 10.0.19041.1 and v1.2.3.4",   # versions, not addresses
    "octets 300.1.2.3",                    # not an IP
    "IBAN DE89 3704 0044 0532 0130 01",    # mod 97 fails
    "NPI 1234567890",                      # Luhn with 80840 fails
    "the password is strong",              # no value that looks like one
    "password: ********",                  # masked
    "Mozart was born on 27 January 1756",  # history, not a person's record
    "The Berlin Wall fell on 9 November 1989",
    "Patient Safety Week starts Monday",
    "He is 45 years old",                  # ages <= 89 are not identifiers
    "Spring 2024 catalogue",
    "meeting at 10:30:00 in room 4",
])
def test_near_miss(classifier: Classifier, text: str) -> None:
    assert found(classifier, text) == []


def test_site_mrn_pattern_and_disabled_types() -> None:
    config = ClassifyConfig(mrn_patterns=(r"\bKH-\d{6}\b",), disabled_types=("email",),
                            detect_names=False)
    classifier = Classifier(config)
    text = "Mr. John Smith, case KH-123456, mail j@example.org"
    assert found(classifier, text) == [("mrn", "KH-123456")]


def test_findings_do_not_carry_values(classifier: Classifier) -> None:
    result = classifier.classify("SSN 123-45-6789")
    assert "123-45-6789" not in repr(result)
