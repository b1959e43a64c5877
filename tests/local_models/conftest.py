"""Fixtures for local_models tests that need the real catalog artifacts.

The real files (a 253 MB GGUF, the MiniLM ONNX model, tiktoken ranks) are installed once by
`make test` with the artifact store, and `APPLIANCE_TEST_MODELS_DIR` points at that models
directory. Tests never download them themselves: without the variable they are skipped, with
the reason saying how to provide it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from local_models.artifacts import ArtifactStore


@pytest.fixture(scope="session")
def test_models_dir() -> Path:
    """The shared, already installed models directory (tests never modify its models)."""
    value = os.environ.get("APPLIANCE_TEST_MODELS_DIR")
    if not value:
        pytest.skip(
            "APPLIANCE_TEST_MODELS_DIR is not set: point it at a models dir where all catalog "
            "entries are installed (`make test` does this; or run ArtifactStore(DIR).install(NAME) "
            "for each entry)"
        )
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"APPLIANCE_TEST_MODELS_DIR={value} is not a directory", pytrace=False)
    return path


@pytest.fixture(scope="session")
def installed(test_models_dir: Path) -> ArtifactStore:
    """An artifact store over the shared models directory and the packaged catalog."""
    return ArtifactStore(test_models_dir)
