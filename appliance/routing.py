"""Which provider serves a requested model.

Today every model is served by exactly one provider; the routing issue turns this into a
ranking over the candidates that policy allows (health, measured latency, cost) with aliases.
The router fails closed: a model no provider serves, or one the key may not use, is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import InvalidRequest, ModelNotFound, ServiceUnavailable
from appliance.keys import ApiKey
from appliance.providers.base import ModelInfo, ModelKind, Provider


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    model: ModelInfo

    @property
    def label(self) -> str:
        """The ``x-appliance-route`` header value."""
        return f"{self.provider.name}/{self.model.id}"


class Router:
    def __init__(self, providers: list[Provider]) -> None:
        self.providers = providers

    def _table(self) -> dict[str, tuple[Provider, ModelInfo]]:
        table: dict[str, tuple[Provider, ModelInfo]] = {}
        for provider in self.providers:
            for model in provider.models():
                table.setdefault(model.id, (provider, model))
        return table

    def visible_models(self, key: ApiKey) -> list[ModelInfo]:
        return [m for _, m in self._table().values() if key.allows_model(m.id)]

    def route(self, model: str, kind: ModelKind, key: ApiKey) -> Route:
        found = self._table().get(model)
        if found is None or not key.allows_model(model):
            # A model outside the key's scopes looks exactly like one that does not exist.
            raise ModelNotFound(f"The model '{model}' does not exist or you do not have "
                                "access to it.", param="model")
        provider, info = found
        if info.kind != kind:
            raise InvalidRequest(f"The model '{model}' is a {info.kind} model and cannot serve "
                                 f"this {kind} request.", param="model", code="invalid_model")
        if not provider.ready():
            raise ServiceUnavailable(f"The model '{model}' is not ready yet.", retry_after=5)
        return Route(provider, info)
