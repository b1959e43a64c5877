"""The one compiled part of the package: the classifier's core (appliance/classify/_core/).

Everything else is in pyproject.toml; setuptools reads this file for the extension only. A C
compiler is needed anyway (llama-cpp-python compiles llama.cpp), so the core is not optional:
a failed build stops the install instead of leaving a slower box behind.
"""

from pathlib import Path

from setuptools import Extension, setup

_CORE = Path("appliance") / "classify" / "_core"

setup(ext_modules=[Extension(
    "appliance.classify._core",
    sources=sorted(str(p) for p in _CORE.glob("*.c")),
    depends=[str(_CORE / "core.h")],
    extra_compile_args=["-O2", "-std=c11", "-Wall"],
)])
