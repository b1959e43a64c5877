"""Check digits that turn "looks like an identifier" into "is one".

A 16-digit order number and a card number have the same shape; only the check digit tells
them apart (and still lets one random number in ten through, hence the prefix rules beside
each check). All functions take the value as the text shows it and ignore separators.
"""

from __future__ import annotations

_SEPARATORS = str.maketrans("", "", " -./")


def _digits(value: str) -> str:
    return value.translate(_SEPARATORS)


def luhn_valid(value: str) -> bool:
    """Luhn mod 10 (payment cards, IMEI, NPI after its prefix)."""
    digits = _digits(value)
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def payment_card_valid(value: str) -> bool:
    """13-19 digits (12-19 for Maestro), a major-network prefix (Visa, Mastercard, Amex,
    Discover, Diners, JCB incl. the 15-digit 1800/2131, UnionPay, Maestro), valid Luhn."""
    digits = _digits(value)
    if not (12 <= len(digits) <= 19 and digits.isdigit()):
        return False
    maestro = digits.startswith(("5018", "5020", "5038", "5893", "6304", "6759", "676"))
    if len(digits) < 13 and not maestro:
        return False
    if len(digits) == 15 and digits.startswith(("1800", "2131")):
        return luhn_valid(digits)
    if digits[0] not in "3456" and not digits.startswith(("22", "23", "24", "25", "26", "27")):
        return False
    return luhn_valid(digits)


def npi_valid(value: str) -> bool:
    """NPI: 10 digits starting with 1 or 2, Luhn over ``80840`` + the number."""
    digits = _digits(value)
    return (len(digits) == 10 and digits.isdigit() and digits[0] in "12"
            and luhn_valid("80840" + digits))


_DEA_FIRST = frozenset("ABCDEFGHJKLMPRSTUX")


def dea_valid(value: str) -> bool:
    """DEA registration: 2 letters + 7 digits; (d1+d3+d5) + 2*(d2+d4+d6) ends in d7."""
    v = value.strip().upper()
    if len(v) != 9 or v[0] not in _DEA_FIRST or not (v[1].isalpha() or v[1] == "9"):
        return False
    digits = v[2:]
    if not digits.isdigit():
        return False
    d = [ord(c) - 48 for c in digits]
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 == d[6]


_VIN_VALUES = {**{str(i): i for i in range(10)},
               **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
               **dict(zip("JKLMN", range(1, 6), strict=True)), "P": 7, "R": 9,
               **dict(zip("STUVWXYZ", range(2, 10), strict=True))}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_valid(value: str) -> bool:
    """17-character VIN (no I, O, Q) whose 9th character is the mod 11 check digit."""
    v = value.upper()
    if len(v) != 17:
        return False
    try:
        total = sum(_VIN_VALUES[c] * w for c, w in zip(v, _VIN_WEIGHTS, strict=True))
    except KeyError:
        return False
    check = total % 11
    return v[8] == ("X" if check == 10 else str(check))


#: IBAN lengths per country (ISO 13616 registry; the countries seen in Europe and beyond).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}


def iban_valid(value: str) -> bool:
    """Country length and ISO 7064 mod 97-10 (the rearranged number mod 97 is 1)."""
    v = value.replace(" ", "").upper()
    if IBAN_LENGTHS.get(v[:2]) != len(v) or not v.isalnum():
        return False
    rearranged = v[4:] + v[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def aba_routing_valid(value: str) -> bool:
    """US bank routing number: 9 digits, 3-7-1 weighted sum divisible by 10."""
    digits = _digits(value)
    if len(digits) != 9 or not digits.isdigit() or digits == "000000000":
        return False
    d = [ord(c) - 48 for c in digits]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5] + d[8]) % 10 == 0


def ssn_valid(value: str) -> bool:
    """SSA rules: area not 000, 666 or 9xx; group not 00; serial not 0000; not the
    advertising numbers 078-05-1120 and 219-09-9999."""
    digits = _digits(value)
    if len(digits) != 9 or not digits.isdigit():
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return digits not in ("078051120", "219099999")


def kvnr_valid(value: str) -> bool:
    """German Krankenversichertennummer (unchangeable part): a letter and 9 digits; the
    letter as 01-26 and the first 8 digits, weighted 1,2,1,2..., cross sums added, mod 10 is
    the last digit."""
    v = value.strip().upper()
    if len(v) != 10 or not ("A" <= v[0] <= "Z") or not v[1:].isdigit():
        return False
    digits = f"{ord(v[0]) - 64:02d}" + v[1:9]
    total = 0
    for i, ch in enumerate(digits):
        p = (ord(ch) - 48) * (2 if i % 2 else 1)
        total += p // 10 + p % 10
    return total % 10 == ord(v[9]) - 48
