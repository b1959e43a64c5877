"""Configuration of the upstream providers: one ``[[providers]]`` table each.

Validated strictly at start, like the rest of ``appliance.toml``: msgspec names the offending
key, and the cross-field rules below (a cloud API cannot be labelled ``site``, Azure needs
deployments) raise ``ValueError`` from ``__post_init__``, which msgspec reports with the
table's path. This module imports nothing from ``appliance.config`` so that the top-level
``Config`` can import it.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

ProviderKind = Literal["openai", "azure_openai", "anthropic", "gemini", "openai_compatible"]
RemoteZone = Literal["site", "cloud"]

#: Kinds that are always someone else's cloud: labelling them ``site`` would let restricted
#: data reach them, so the config refuses it (use ``openai_compatible`` for on-site servers).
CLOUD_ONLY_KINDS = frozenset({"openai", "azure_openai", "anthropic", "gemini"})

#: ``env:NAME`` (an environment variable) or ``credential:NAME`` (a systemd credential, read
#: from ``$CREDENTIALS_DIRECTORY/NAME``). The value itself never appears in the config file.
CredentialRef = Annotated[
    str, msgspec.Meta(pattern=r"^(env|credential):[A-Za-z_][A-Za-z0-9_.\-]*$")]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=64)]

DEFAULT_AZURE_API_VERSION = "2024-10-21"


class TimeoutsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Four separate limits, because one number cannot tell a dead server (connect) from a
    slow prompt (first byte) from a stalled stream (between chunks)."""

    connect: PositiveSeconds = 5.0
    #: Until the response headers and the first body chunk: covers the upstream's prompt time.
    first_byte: PositiveSeconds = 60.0
    between_chunks: PositiveSeconds = 30.0
    total: PositiveSeconds = 600.0


class ProviderConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One upstream provider (``[[providers]]``)."""

    #: Unique among providers; it names the route in headers, logs and the audit log.
    name: Name
    #: The registry key (``appliance.providers.registry.PROVIDER_KINDS``).
    kind: ProviderKind
    #: Where the model runs, as policy sees it. Defaults to the safe side.
    zone: RemoteZone = "cloud"
    #: The API root; empty takes the kind's public endpoint. OpenAI-style URLs include
    #: ``/v1`` (``http://vllm.lan:8000/v1``), as with the OpenAI SDK's ``base_url``.
    base_url: str = ""
    #: Model ids served. For ``azure_openai`` a table model id -> deployment name.
    models: list[str] | dict[str, str] = msgspec.field(default_factory=list)
    #: Azure's ``api-version`` query parameter.
    api_version: str = ""
    #: Where the API key comes from; optional for site servers that take none.
    credential: CredentialRef | None = None
    timeouts: TimeoutsConfig = TimeoutsConfig()
    #: Connection pool size towards this upstream.
    max_connections: PositiveInt = 64
    #: Sent with every request (e.g. ``OpenAI-Organization``). Never put keys here.
    extra_headers: dict[str, str] = msgspec.field(default_factory=dict)
    #: The HTTP client towards this upstream: ``http1``, the appliance's lean keep-alive
    #: HTTP/1.1 client on httptools (the default: about half aiohttp's CPU per call), or
    #: ``aiohttp``'s client (the previous default, a fallback should an upstream need it).
    #: Neither reads ``HTTPS_PROXY`` from the environment: a proxy is set here, in ``proxy``.
    transport: Literal["http1", "aiohttp"] = "http1"
    #: A forward proxy to reach this upstream through, ``http://host:port`` (a hospital's
    #: egress proxy): https upstreams through a CONNECT tunnel, so the proxy sees the host
    #: name and nothing of the request. Such a provider is reached with aiohttp's client.
    proxy: str = ""
    #: ``user:password`` for the proxy (Basic ``Proxy-Authorization``), from where
    #: ``credential`` takes its values; never written in the config itself.
    proxy_credential: CredentialRef | None = None
    #: A PEM file of the certificate authorities to trust for this upstream instead of the
    #: system's (a proxy that inspects TLS signs with its own CA; a site server with a
    #: private one).
    ca_file: str = ""

    def __post_init__(self) -> None:
        for name, value in self.extra_headers.items():
            if not name or any(c in name + value for c in "\r\n\0") or ":" in name:
                raise ValueError(f"`extra_headers`: {name!r} is not a valid header line")
        if self.kind in CLOUD_ONLY_KINDS and self.zone != "cloud":
            raise ValueError(f"`zone`: kind {self.kind!r} is a cloud API and must be zone "
                             "'cloud'; use kind 'openai_compatible' for servers on site")
        if self.kind in CLOUD_ONLY_KINDS and self.credential is None:
            raise ValueError(f"`credential`: kind {self.kind!r} needs a credential "
                             "('env:NAME' or 'credential:NAME')")
        if self.kind == "azure_openai" and not isinstance(self.models, dict):
            raise ValueError("`models`: azure_openai needs a table model id -> deployment")
        if self.kind != "azure_openai" and isinstance(self.models, dict):
            raise ValueError(f"`models`: kind {self.kind!r} takes a list of model ids")
        if not self.models:
            raise ValueError("`models`: list at least one model this provider serves")
        if self.api_version and self.kind != "azure_openai":
            raise ValueError("`api_version` applies only to kind 'azure_openai'")
        if self.kind == "openai_compatible" and not self.base_url:
            raise ValueError("`base_url`: openai_compatible needs the server's URL")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ValueError("`base_url` must start with http:// or https://")
        if self.proxy:
            scheme, _, rest = self.proxy.partition("://")
            if scheme != "http" or not rest.strip("/"):
                raise ValueError("`proxy` must be an http:// URL (http://proxy.lan:3128)")
            if "@" in rest:
                raise ValueError("`proxy` must not hold a user or password: put them in a "
                                 "credential named by `proxy_credential`")
        if self.proxy_credential and not self.proxy:
            raise ValueError("`proxy_credential` needs a `proxy`")
        if self.timeouts.total < self.timeouts.first_byte:
            raise ValueError("`timeouts.total` must be at least `timeouts.first_byte`")

    @property
    def model_ids(self) -> list[str]:
        return list(self.models)
