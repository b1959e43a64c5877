"""A labelled corpus for the classifier, generated deterministically (Faker, fixed seeds).

Identifier-bearing items (clinical notes, discharge letters, billing, HR, factory messages,
secrets; English and German) carry the finding types that must be found and the least level
they must get. Benign items (part codes, versions, order numbers that fail Luhn, public dates,
famous names, maths, specs, code) must give no finding at all.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from faker import Faker

from appliance.classify.checksums import kvnr_valid, npi_valid, payment_card_valid, vin_valid
from appliance.classify.findings import Sensitivity

R, C, P = Sensitivity.RESTRICTED, Sensitivity.CONFIDENTIAL, Sensitivity.PUBLIC


@dataclass(frozen=True)
class Item:
    category: str
    text: str
    types: frozenset[str]
    level: Sensitivity


def _npi(rng: random.Random) -> str:
    while True:
        value = str(rng.randint(1000000000, 2999999999))
        if npi_valid(value):
            return value


def _dea(rng: random.Random, surname: str) -> str:
    d = [rng.randint(0, 9) for _ in range(6)]
    check = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10
    return rng.choice("ABFM") + surname[0].upper() + "".join(map(str, d)) + str(check)


def _mbi(rng: random.Random) -> str:
    a = "ACDEFGHJKMNPQRTUVWXY"
    an = a + "0123456789"
    return (str(rng.randint(1, 9)) + rng.choice(a) + rng.choice(an) + str(rng.randint(0, 9))
            + rng.choice(a) + rng.choice(an) + str(rng.randint(0, 9)) + rng.choice(a)
            + rng.choice(a) + str(rng.randint(0, 9)) + str(rng.randint(0, 9)))


def _kvnr(rng: random.Random) -> str:
    while True:
        value = rng.choice(string.ascii_uppercase) + "".join(
            rng.choice(string.digits) for _ in range(9))
        if kvnr_valid(value):
            return value


def _vin(rng: random.Random) -> str:
    chars = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    while True:
        value = "".join(rng.choice(chars) for _ in range(17))
        if vin_valid(value):
            return value


def _token(rng: random.Random, n: int, chars: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(chars) for _ in range(n))


def _password(rng: random.Random) -> str:
    return _token(rng, rng.randint(6, 10)) + rng.choice("!#%&*?") + str(rng.randint(0, 99))


def _pem(rng: random.Random) -> str:
    body = "\n".join(_token(rng, 64, string.ascii_letters + string.digits + "+/")
                     for _ in range(4))
    kind = rng.choice(["RSA ", "EC ", "", "OPENSSH "])
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


CONDITIONS = ["type 2 diabetes", "hypertension", "pneumonia", "a hip fracture", "COPD",
              "major depression", "atrial fibrillation", "breast cancer"]
DIAGNOSEN = ["Diabetes mellitus Typ 2", "Hypertonie", "Pneumonie", "Oberschenkelhalsfraktur",
             "Depression", "Vorhofflimmern"]


def identifier_items(n_per_template: int = 12, seed: int = 1234) -> list[Item]:
    rng = random.Random(seed)
    en, de = Faker("en_US"), Faker("de_DE")
    en.seed_instance(seed)
    de.seed_instance(seed + 1)
    items: list[Item] = []

    def add(category: str, text: str, types: set[str], level: Sensitivity) -> None:
        items.append(Item(category, text, frozenset(types), level))

    for _ in range(n_per_template):
        name, last = en.name(), en.last_name()
        dob = en.date_of_birth(minimum_age=18, maximum_age=88)
        adm = en.date_between("-2y", "today")
        fmt = rng.choice(["%m/%d/%Y", "%Y-%m-%d", "%B %d, %Y"])
        street = en.street_address()
        addr = f"{street}\n{en.city()}, {en.state_abbr()} {en.zipcode()}"
        add("clinical", f"Patient {name}, DOB {dob.strftime(fmt)}, MRN: {rng.randint(10**6, 10**8)}"
            f", was admitted on {adm.strftime(fmt)} with {rng.choice(CONDITIONS)}. "
            f"Contact: {en.phone_number()}.",
            {"person_name", "date_of_birth", "mrn", "person_date", "phone"}, R)
        add("clinical", f"Discharge summary. Mrs. {last} is a {rng.randint(90, 104)}-year-old "
            f"woman treated for {rng.choice(CONDITIONS)}; discharged {adm.strftime(fmt)}. "
            f"Home address: {addr}",
            {"person_name", "age_over_89", "person_date", "street_address", "zip_code"}, R)
        add("clinical", f"Pt: {name} | SSN {en.ssn()} | email {en.email()} | "
            f"dx: {rng.choice(CONDITIONS)}, metformin 500 mg", {"person_name", "ssn", "email"}, R)
        de_name = de.name()
        add("clinical_de", f"Patientin Frau {de.last_name()}, geb. {dob.strftime('%d.%m.%Y')}, "
            f"Versichertennummer {_kvnr(rng)}, aufgenommen am {adm.strftime('%d.%m.%Y')} mit "
            f"{rng.choice(DIAGNOSEN)}. Tel.: {de.phone_number()}",
            {"person_name", "date_of_birth", "de_kvnr", "person_date", "phone"}, R)
        add("clinical_de", f"Entlassbrief\nHerr {de.first_name()} {de.last_name()}\n"
            f"{de.street_address()}\n{de.postcode()} {de.city()}\n"
            f"Diagnose: {rng.choice(DIAGNOSEN)}. Fax an Hausarzt: 0{rng.randint(30, 9999)} "
            f"{rng.randint(100000, 9999999)}",
            {"person_name", "street_address", "zip_code", "fax"}, R)
        add("billing", f"Claim for {name}: Medicare MBI {_mbi(rng)}, rendering NPI {_npi(rng)}, "
            f"account number {rng.randint(10**7, 10**10)}, card on file {en.credit_card_number()}.",
            {"medicare_mbi", "npi", "account_number", "payment_card"}, R)
        add("billing", f"Prescriber Dr. {last}, DEA {_dea(rng, last)}, member ID "
            f"W{rng.randint(10**8, 10**9)}, policy holder {name}.",
            {"person_name", "dea_number", "health_plan_id"}, R)
        add("billing_de", f"Rechnung an Herrn {de_name}, IBAN {de.iban()}, Kundennummer "
            f"{rng.randint(10**5, 10**8)}.", {"person_name", "iban", "account_number"}, C)
        add("hr", f"Employee: {name}\nSSN: {en.ssn()}\nPhone: {en.phone_number()}\n"
            f"Address: {addr}", {"person_name", "ssn", "phone", "street_address", "zip_code"}, R)
        add("hr", f"Name: {name}, driver's license no. {en.bothify('?#######').upper()}, "
            f"e-mail {en.email()}, start date next Monday.",
            {"person_name", "license_number", "email"}, C)
        add("hr_de", f"Mitarbeiterin: {de_name}, Geburtsdatum {dob.strftime('%d.%m.%Y')}, "
            f"IBAN {de.iban()}, E-Mail {de.email()}",
            {"person_name", "date_of_birth", "iban", "email"}, C)
        add("factory", f"Line 3: press serial number {en.bothify('SN-####-??').upper()} at "
            f"{en.ipv4_private()} reported fault E{rng.randint(100, 999)}. "
            f"Operator: {en.first_name()} {last}",
            {"device_id", "ip_address", "person_name"}, C)
        add("factory_de", f"Störung an Anlage 7: Seriennummer {rng.randint(10**6, 10**9)}-"
            f"{rng.choice('ABCD')}, Steuerung unter {en.ipv4_private()}, MAC "
            f"{en.mac_address().upper()}.", {"device_id", "ip_address"}, C)
        add("factory", f"Forklift VIN {_vin(rng)} logged at http://{en.ipv4_private()}:8080/"
            f"fleet by {en.first_name()}.", {"vin", "internal_url"}, C)
        add("secrets", f"export AWS_ACCESS_KEY_ID=AKIA{_token(rng, 16, string.ascii_uppercase)}\n"
            f"export GITHUB_TOKEN=ghp_{_token(rng, 36)}", {"cloud_access_key", "api_key"}, C)
        add("secrets", f"OPENAI_API_KEY=sk-proj-{_token(rng, 40)} and the DB password: "
            f"{_password(rng)}", {"api_key", "password"}, C)
        add("secrets", f"Here is the deploy key:\n{_pem(rng)}\nuse it on db01.", {"private_key"}, C)
        add("secrets_de", f"Das Passwort lautet {_password(rng)}, Verbindung "
            f"postgres://admin:{_password(rng)}@{en.ipv4_private()}:5432/erp",
            {"password", "internal_url"}, C)
    return items


FAMOUS = ["Albert Einstein published the theory of general relativity in 1915.",
          "Angela Merkel served as chancellor from 2005 to 2021.",
          "Ludwig van Beethoven wrote nine symphonies.",
          "Marie Curie won Nobel Prizes in 1903 and 1911.",
          "Mozart was born on 27 January 1756 in Salzburg.",
          "Johann Sebastian Bach composed the Goldberg Variations around 1741.",
          "Neil Armstrong walked on the Moon on July 20, 1969.",
          "Ada Lovelace wrote about the Analytical Engine in 1843."]
PUBLIC_DATES = ["The Berlin Wall fell on 9 November 1989.",
                "Die Mauer fiel am 9. November 1989; die Einheit folgte am 3.10.1990.",
                "The Apollo 11 mission launched on 1969-07-16.",
                "Windows 10 reached end of support on October 14, 2025.",
                "The 2024 Olympics opened in Paris on 26 July 2024."]


def benign_items(n: int = 300, seed: int = 4321) -> list[Item]:
    rng = random.Random(seed)
    en, de = Faker("en_US"), Faker("de_DE")
    en.seed_instance(seed)
    de.seed_instance(seed + 1)
    makers = [
        lambda: f"Part {en.bothify('PN-####-??').upper()} replaces {en.bothify('X#-###')}; "
                f"torque {rng.randint(5, 90)} Nm, weight {rng.uniform(0.1, 9):.2f} kg.",
        lambda: f"Upgraded from v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)} "
                f"to version {rng.randint(1, 12)}.{rng.randint(0, 9)}.{rng.randint(0, 99)}."
                f"{rng.randint(0, 9999)} (build {rng.randint(1000, 99999)}).",
        lambda: f"Order {_non_card(rng)} shipped {rng.randint(2, 40)} units of "
                f"{en.bothify('??-####').upper()} at {rng.randint(1, 999)}.{rng.randint(10, 99)} "
                f"EUR each.",
        lambda: rng.choice(FAMOUS),
        lambda: rng.choice(PUBLIC_DATES),
        lambda: f"{rng.randint(2, 99)} * {rng.randint(2, 99)} = ? Solve x^2 - {rng.randint(2, 50)}x"
                f" + {rng.randint(1, 99)} = 0 and round to {rng.randint(2, 6)} decimals "
                f"(pi = 3.14159).",
        lambda: f"Spec: {rng.randint(100, 2000)} W, {rng.choice([110, 230, 400])} V, "
                f"{rng.randint(1, 64)} GB RAM, {rng.randint(2, 24)} cores @ {rng.uniform(1, 5):.1f} "
                f"GHz, IP{rng.choice([54, 65, 67])}, {rng.randint(10, 99)} dB.",
        lambda: f"for i in range({rng.randint(2, 100)}):\n    total += prices[i] * "
                f"{rng.randint(2, 9)}\nprint(f'{{total:.2f}}')  # {en.sentence()}",
        lambda: f"SELECT id, total FROM orders WHERE total > {rng.randint(10, 9999)} AND "
                f"created_at >= '2024-{rng.randint(1, 12):02d}-01' LIMIT {rng.randint(1, 500)};",
        lambda: f"Der Zug ICE {rng.randint(100, 999)} fährt um {rng.randint(5, 23)}:"
                f"{rng.randint(10, 59)} von Gleis {rng.randint(1, 20)}. {de.sentence()}",
        lambda: f"Stückzahl {rng.randint(100, 50000)}, Toleranz ±0,{rng.randint(1, 9)} mm, "
                f"Charge {en.bothify('####-??').upper()}, Prüfdatum KW {rng.randint(1, 52)}.",
        lambda: f"Quarterly revenue grew {rng.uniform(1, 30):.1f}% to ${rng.randint(1, 900)}."
                f"{rng.randint(1, 9)}M; {en.sentence()} {en.sentence()}",
        lambda: f"ISBN 978-3-{rng.randint(10, 99)}-{rng.randint(100000, 999999)}-"
                f"{rng.randint(0, 9)}, {rng.randint(100, 900)} pages, {en.catch_phrase()}.",
        lambda: f"Temperature {rng.uniform(-20, 40):.1f} °C at {rng.randint(0, 23):02d}:"
                f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}, humidity {rng.randint(5, 99)}%,"
                f" pressure {rng.randint(950, 1050)} hPa.",
        lambda: f"{de.catch_phrase()}: {de.sentence()} Artikel {rng.randint(10000, 99999)}, "
                f"Preis {rng.randint(1, 999)},{rng.randint(10, 99)} €.",
        lambda: f"The patient safety week starts on {rng.randint(1, 28)} March; "
                f"{rng.randint(5, 95)}% of staff took the {rng.randint(10, 60)}-minute course.",
    ]
    return [Item("benign", rng.choice(makers)(), frozenset(), P) for _ in range(n)]


def _non_card(rng: random.Random) -> str:
    while True:
        value = "".join(rng.choice(string.digits) for _ in range(16))
        if not payment_card_valid(value):
            return value
