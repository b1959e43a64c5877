"""The one place that maps a provider ``kind`` to its class.

Nothing else in the code asks which kind a provider is: the router and the pipeline see only
``Provider``. Credentials are resolved here, once at start, so a missing key stops the daemon
with a message naming the provider and the reference instead of failing the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from appliance.config import ConfigError
from appliance.providers.anthropic import AnthropicProvider
from appliance.providers.azure_openai import AzureOpenAIProvider
from appliance.providers.config import ProviderConfig
from appliance.providers.credentials import resolve_credential
from appliance.providers.gemini import GeminiProvider
from appliance.providers.http import HTTPProvider
from appliance.providers.openai import OpenAIProvider
from appliance.providers.openai_compatible import OpenAICompatibleProvider
from appliance.providers.transport import Transport

PROVIDER_KINDS: dict[str, type[HTTPProvider]] = {
    "openai": OpenAIProvider,
    "azure_openai": AzureOpenAIProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "openai_compatible": OpenAICompatibleProvider,
}


def build_provider(config: ProviderConfig, *, environ: Mapping[str, str] | None = None,
                   transport: Transport | None = None) -> HTTPProvider:
    """The provider ``config`` describes, its credential resolved. Opens no connection."""
    secret = (resolve_credential(config.name, config.credential, environ)
              if config.credential else None)
    proxy_secret = (resolve_credential(config.name, config.proxy_credential, environ)
                    if config.proxy_credential else None)
    if proxy_secret is not None and ":" not in proxy_secret.reveal():
        raise ConfigError(f"provider {config.name!r}: proxy_credential "
                          f"{config.proxy_credential!r} must hold user:password")
    if config.ca_file and not os.path.isfile(config.ca_file):
        raise ConfigError(f"provider {config.name!r}: ca_file {config.ca_file!r} is not a "
                          "readable file")
    return PROVIDER_KINDS[config.kind](config, secret, transport, proxy_secret)


def build_providers(configs: Sequence[ProviderConfig], *,
                    environ: Mapping[str, str] | None = None) -> list[HTTPProvider]:
    """Every configured provider, in config order; duplicate names are a ``ConfigError``."""
    seen: set[str] = set()
    for index, config in enumerate(configs):
        if config.name in seen or config.name == "local":
            raise ConfigError(f"key `providers[{index}].name`: provider name {config.name!r} "
                              "is already used")
        seen.add(config.name)
    return [build_provider(config, environ=environ) for config in configs]
