"""The compiled core against the Python detectors: texts to compare them on, and a command
line for working on one detector.

    .venv/bin/python -m tests.appliance.classify.parity build DIR [detector.c ...]
    .venv/bin/python -m tests.appliance.classify.parity check NAME [--core DIR] [--show N]

``build`` compiles core.c with the given detector files into ``DIR`` (the detectors not
given are left out: their slots are empty); ``check`` compares the named detector (a name in
``_core.SLOTS``, or ``health``) with its Python twin on every text of ``texts()``.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import random
import subprocess
import sys
import sysconfig
from functools import cache
from pathlib import Path
from types import ModuleType

from appliance.classify import ClassifyConfig
from appliance.classify.context import has_health_context
from appliance.classify.detectors import Detector, Scan, Vocabulary, build_detectors
from appliance.classify.findings import FindingType
from tests.appliance.classify.corpus import benign_items, identifier_items

TEXTS_DIR = Path(__file__).resolve().parent / "core_texts"
CORE_DIR = Path(__file__).resolve().parents[3] / "appliance" / "classify" / "_core"
ALL_TYPES = (1 << len(FindingType)) - 1

#: Fragments near the edges of the detectors' patterns (labels, layouts, separators).
PALETTE = [*"0123456789      --..//::@()+#ABCDEFXYZabcxyzäöüßẞ\t\n,;'\"=_*xé’", "SSN ", "MRN: ",
           "Straße ", "str. ", "weg ", "Tel. ", "fax ", "IBAN ", "DE89", "AKIA", "AIza",
           "ghp_", "sk-", "eyJ", "://", "www.", "-----BEGIN PRIVATE KEY-----",
           "-----END PRIVATE KEY-----", "password: ", "Mr. ", "Dr. ", "Frau ", "Patient ",
           "Name: ", "DOB ", "d.o.b. ", "geb. ", "admitted ", "y/o", "j.", "Oak Street ",
           " IL ", "aged ", "age ", "NPI ", "DEA ", "S/N ", "zip ", "00:1A:2B:3C:4D:5E",
           "fe80::1", "10.0.0.", "192.168.1.20", "4111 1111 1111 1111", "123-45-6789",
           "(555) 234-5678", "+49 30 1234567", "1EG4-TE5-MK73", "1M8GDM9AXKP042788",
           "Hauptstraße 12\n10115 Berlin", "Versichertennummer ", "A123456780", "Member ID ",
           "Account ", "Kontonummer ", "Serial ", "license ", "VIN ", "https://", "http://",
           "user:pw@", ".local", ".com/", "Smith", "Müller", "version ", "v", "15.03.1950",
           "March 3, 1948", "1950-03-15", "92 years old", "95-jährige", " St.", " Ave",
           "Springfield, ", "Apt. 4", "Mr Smith", "Hr. ", "token: ", "api_key=", "E11.9"]


def load_core(directory: str | None = None) -> ModuleType:
    """The core built into ``directory`` by ``build``, or the installed one."""
    if directory is None:
        from appliance.classify import _core  # type: ignore[attr-defined]
        return _core
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    path = Path(directory) / f"_core{suffix}"
    loader = importlib.machinery.ExtensionFileLoader("_core", str(path))
    spec = importlib.util.spec_from_file_location("_core", path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def build(directory: str, sources: list[str]) -> Path:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"_core{sysconfig.get_config_var('EXT_SUFFIX')}"
    files = [str(CORE_DIR / "core.c"), *(str(Path(s)) for s in sources)]
    subprocess.run(["gcc", "-O2", "-g", "-Wall", "-Wextra", "-Wno-unused-parameter",
                    "-Wno-missing-field-initializers", "-shared", "-fPIC",
                    f"-I{sysconfig.get_paths()['include']}", f"-I{CORE_DIR}", *files,
                    "-o", str(target)], check=True)
    return target


@cache
def texts() -> tuple[str, ...]:
    """Corpus items, ~4 KB documents of them (long texts take other paths), mutations of
    both, and random strings of ``PALETTE`` fragments."""
    rng = random.Random(11)
    items = [i.text for i in identifier_items()] + [i.text for i in benign_items()]
    documents = ["\n\n".join(items[i:i + 20]) for i in range(0, len(items), 20)]
    base = items + documents
    out = list(base)
    for text in base:
        for _ in range(2):
            chars = list(text)
            for _ in range(rng.randint(1, 6)):
                at = rng.randrange(len(chars) + 1)
                roll = rng.random()
                if roll < 0.4 and at < len(chars):
                    del chars[at]
                elif roll < 0.5 and at < len(chars):
                    chars[at] = chars[at].swapcase()
                else:
                    chars.insert(at, rng.choice(PALETTE))
            out.append("".join(chars))
    out += ["".join(rng.choice(PALETTE) for _ in range(rng.randint(1, 40)))
            for _ in range(4000)]
    out += ["".join(rng.choice(PALETTE) for _ in range(rng.randint(60, 200)))
            for _ in range(150)]
    for path in sorted(TEXTS_DIR.glob("*.json")):  # edge cases written per detector
        out += json.loads(path.read_text(encoding="utf-8"))
    return tuple(out)


@cache
def python_detectors() -> tuple[Vocabulary, dict[str, Detector]]:
    from appliance.classify import Classifier
    classifier = Classifier(ClassifyConfig())
    detectors = build_detectors(ClassifyConfig())
    slots = ("secret", "email", "url", "ip", "ssn", "card", "phone", "iban", "mbi", "vin",
             "labelled", "name", "person_date", "age", "address")
    return classifier._vocabulary, dict(zip(slots, detectors, strict=True))


def python_findings(name: str, text: str) -> list[tuple[int, int, int, float]] | bool:
    vocabulary, detectors = python_detectors()
    scan = Scan.of(text, vocabulary)
    if name == "health":
        return has_health_context(scan)
    order = list(FindingType)
    return [(order.index(FindingType(f.type)), f.start, f.end, f.confidence)
            for f in detectors[name].find(scan)]


def core_findings(core: ModuleType, name: str, text: str
                  ) -> list[tuple[int, int, int, float]] | bool | None:
    if name == "health":
        result = core.health(text)
        return None if result is None else bool(result)
    found = core.detect(text, name, ALL_TYPES)
    return None if found is None else [tuple(f) for f in found]


def mismatches(core: ModuleType, name: str, corpus: tuple[str, ...] | None = None
               ) -> list[tuple[str, object, object]]:
    """(text, python, core) for every text where they differ (texts the core declines, those
    with non-ASCII digits, are skipped: the Python path takes them)."""
    differ = []
    for text in corpus if corpus is not None else texts():
        got = core_findings(core, name, text)
        if got is None:
            continue
        want = python_findings(name, text)
        if got != want:
            differ.append((text, want, got))
    return differ


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("directory")
    b.add_argument("sources", nargs="*")
    c = sub.add_parser("check")
    c.add_argument("name")
    c.add_argument("--core")
    c.add_argument("--show", type=int, default=5)
    args = parser.parse_args()
    if args.command == "build":
        print(build(args.directory, args.sources))
        return
    core = load_core(args.core)
    differ = mismatches(core, args.name)
    print(f"{args.name}: {len(texts())} texts, {len(differ)} differ")
    for text, want, got in differ[:args.show]:
        print(f"--- text {text!r}\n  python {want}\n  core   {got}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
