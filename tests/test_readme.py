"""The configuration examples in README.md are valid configuration."""

from __future__ import annotations

import re

import pytest

from appliance.config import parse_config
from tests.conftest import REPO

BLOCKS = re.findall(r"```toml\n(.*?)```", (REPO / "README.md").read_text(), re.S)


def test_readme_has_config_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS)
def test_readme_config_example_is_valid(block: str) -> None:
    parse_config(block, "README.md")
