import pytest

from appliance.classify.checksums import (
    aba_routing_valid,
    dea_valid,
    iban_valid,
    kvnr_valid,
    luhn_valid,
    npi_valid,
    payment_card_valid,
    ssn_valid,
    vin_valid,
)


@pytest.mark.parametrize(("check", "good", "bad"), [
    (luhn_valid, "79927398713", "79927398710"),
    (payment_card_valid, "4111 1111 1111 1111", "4111 1111 1111 1112"),
    (payment_card_valid, "378282246310005", "1234567812345670"),  # Amex; no network prefix
    (npi_valid, "1234567893", "1234567890"),
    (dea_valid, "AB1234563", "AB1234567"),
    (vin_valid, "1M8GDM9AXKP042788", "1M8GDM9A1KP042788"),
    (iban_valid, "DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 01"),
    (iban_valid, "GB82WEST12345698765432", "GB82WEST1234569876543"),  # wrong length
    (aba_routing_valid, "011000015", "011000016"),
    (ssn_valid, "123-45-6789", "666-45-6789"),
    (kvnr_valid, "A123456780", "A123456781"),
])
def test_valid_and_near_miss(check, good, bad):  # type: ignore[no-untyped-def]
    assert check(good)
    assert not check(bad)


@pytest.mark.parametrize("ssn", ["000-12-3456", "900-12-3456", "123-00-4567", "123-45-0000",
                                 "078-05-1120"])
def test_ssn_rules(ssn: str) -> None:
    assert not ssn_valid(ssn)


def test_dea_rejects_bad_shape() -> None:
    assert not dea_valid("1B1234563")
    assert not dea_valid("IB1234563")  # I is not a registrant type
