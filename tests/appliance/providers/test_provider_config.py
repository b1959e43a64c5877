"""``ProviderConfig`` validation, credentials and the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from appliance.config import ConfigError
from appliance.providers.config import ProviderConfig
from appliance.providers.credentials import Secret, resolve_credential
from appliance.providers.registry import build_providers


def convert(**raw: Any) -> ProviderConfig:
    base: dict[str, Any] = {"name": "p", "kind": "openai", "credential": "env:K",
                            "models": ["m"]}
    return msgspec.convert({**base, **raw}, ProviderConfig)


@pytest.mark.parametrize(("raw", "named"), [
    ({"kind": "bedrock"}, "$.kind"),
    ({"zone": "site"}, "`zone`"),
    ({"credential": None}, "`credential`"),
    ({"credential": "file:/etc/key"}, "$.credential"),
    ({"kind": "azure_openai"}, "`models`"),
    ({"models": []}, "`models`"),
    ({"kind": "openai_compatible", "credential": None}, "`base_url`"),
    ({"timeouts": {"first_bite": 1}}, "first_bite"),
    ({"timeouts": {"connect": 0}}, "$.timeouts.connect"),
    ({"api_version": "2024"}, "`api_version`"),
])
def test_invalid_config_names_the_field(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        convert(**raw)
    assert named in str(caught.value)


def test_site_server_needs_no_key() -> None:
    config = convert(kind="openai_compatible", zone="site", credential=None,
                     base_url="http://vllm.lan:8000/v1")
    [provider] = build_providers([config], environ={})
    assert provider.zone == "site" and provider.secret is None


def test_secret_never_shows_its_value() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in f"{secret} {secret!r} {[secret]} {secret:>20}"
    assert secret.reveal() == "hunter2"
    assert secret.redact("key hunter2 refused") == "key *** refused"


def test_credential_sources(tmp_path: Path) -> None:
    (tmp_path / "openai-key").write_text("sk-file\n")
    env = {"KEY": "sk-env", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert resolve_credential("p", "env:KEY", env).reveal() == "sk-env"
    assert resolve_credential("p", "credential:openai-key", env).reveal() == "sk-file"


@pytest.mark.parametrize("reference", ["env:MISSING", "credential:missing"])
def test_missing_credential_names_provider_and_reference(tmp_path: Path,
                                                         reference: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_credential("cloud-a", reference, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert "'cloud-a'" in str(caught.value) and reference in str(caught.value)


def test_duplicate_provider_names_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"providers\[1\]\.name"):
        build_providers([convert(), convert()], environ={"K": "v"})


def test_header_injection_is_refused_at_start() -> None:
    """Credentials and extra headers go into header lines as they are: a line break in one
    would let it add headers (or a whole request) of its own."""
    with pytest.raises(ConfigError, match="line break"):
        resolve_credential("p", "env:KEY", {"KEY": "sk-a\r\nX-Injected: 1"})
    bad = {"name": "p", "kind": "openai", "credential": "env:KEY",
           "extra_headers": {"OpenAI-Organization": "org\r\nX-Injected: 1"}}
    with pytest.raises(msgspec.ValidationError, match="extra_headers"):
        msgspec.convert(bad, ProviderConfig)
