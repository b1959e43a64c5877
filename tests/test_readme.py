"""The configuration examples in README.md are valid configuration."""

from __future__ import annotations

import re

import pytest

from appliance.config import parse_config
from appliance.policy import parse_policy
from sync.central.config import parse_config as parse_central_config
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```toml\n(.*?)```", README, re.S)
#: Policy files (```toml policy): their own schema, not the config's.
POLICY_BLOCKS = re.findall(r"```toml policy\n(.*?)```", README, re.S)
#: Central's config (```toml central).
CENTRAL_BLOCKS = re.findall(r"```toml central\n(.*?)```", README, re.S)


def test_readme_has_config_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS)
def test_readme_config_example_is_valid(block: str) -> None:
    parse_config(block, "README.md")


def test_readme_has_a_policy_example() -> None:
    assert POLICY_BLOCKS


@pytest.mark.parametrize("block", POLICY_BLOCKS)
def test_readme_policy_example_is_valid(block: str) -> None:
    parse_policy(block, "README.md")


@pytest.mark.parametrize("block", CENTRAL_BLOCKS or ["missing"])
def test_readme_central_config_example_is_valid(block: str) -> None:
    assert block != "missing", "README has no central config example"
    parse_central_config(block, "README.md")
