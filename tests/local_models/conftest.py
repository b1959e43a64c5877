"""Fixtures for local_models tests that need the real catalog artifacts.

The real files (a 253 MB GGUF, the MiniLM ONNX model, tiktoken ranks) are installed once by
`make test` with the artifact store, and `APPLIANCE_TEST_MODELS_DIR` points at that models
directory (default ``.cache/test-data/models``). Tests never download them themselves: without
them the tests fail, saying how to install them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from local_models.artifacts import ArtifactStore
from tests.conftest import models_dir


@pytest.fixture(scope="session")
def test_models_dir() -> Path:
    """The shared, already installed models directory (tests never modify its models)."""
    return models_dir()


@pytest.fixture(scope="session")
def installed(test_models_dir: Path) -> ArtifactStore:
    """An artifact store over the shared models directory and the packaged catalog."""
    return ArtifactStore(test_models_dir)
