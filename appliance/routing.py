"""Which provider serves a requested model, and in which order to try the candidates.

A client asks for a concrete model (served by exactly one provider) or for an alias: a name
standing for candidate models across zones in preference order. ``resolve`` turns the name
into candidate routes; the pipeline's route step removes what the zone policy forbids and what
``health`` says is cooling down, and ``rank`` orders what is left. The router fails closed: a
model no provider serves, or one the key may not use, is refused, and a candidate the policy
forbids is never tried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from appliance.config import AliasConfig, ConfigError
from appliance.errors import InvalidRequest, ModelNotFound
from appliance.health import ProviderHealth
from appliance.keys import ApiKey
from appliance.providers.base import ModelInfo, ModelKind, Provider

Strategy = Literal["ordered", "fastest"]


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    model: ModelInfo

    @property
    def label(self) -> str:
        """The ``x-appliance-route`` header value: the model that served."""
        return f"{self.provider.name}/{self.model.id}"


@dataclass(frozen=True, slots=True)
class Alias:
    name: str
    candidates: tuple[str, ...]
    strategy: Strategy = "ordered"


@dataclass(frozen=True, slots=True)
class Candidates:
    """What a requested name stands for: one route for a model, several for an alias."""

    routes: list[Route]
    alias: Alias | None = None


def aliases_from_config(table: Mapping[str, list[str] | AliasConfig]) -> dict[str, Alias]:
    return {name: (Alias(name, tuple(entry)) if isinstance(entry, list) else
                   Alias(name, tuple(entry.candidates), entry.strategy))
            for name, entry in table.items()}


class Router:
    def __init__(self, providers: list[Provider], aliases: dict[str, Alias] | None = None,
                 health: ProviderHealth | None = None) -> None:
        self.providers = providers
        self.aliases = aliases or {}
        self.health = health or ProviderHealth()

    def _table(self) -> dict[str, tuple[Provider, ModelInfo]]:
        table: dict[str, tuple[Provider, ModelInfo]] = {}
        for provider in self.providers:
            for model in provider.models():
                table.setdefault(model.id, (provider, model))
        return table

    def check(self, fallback_models: Mapping[str, str | None] | None = None) -> None:
        """At start, once every provider is connected: each alias candidate and policy
        fallback model is a served model, and no alias shadows one. ``ConfigError`` names
        the key."""
        table = self._table()
        for alias in self.aliases.values():
            where = f"key `aliases.{alias.name}`"
            if alias.name in table:
                raise ConfigError(f"{where}: the alias shadows the model '{alias.name}' that "
                                  f"provider '{table[alias.name][0].name}' serves")
            if not alias.candidates:
                raise ConfigError(f"{where}: list at least one candidate model")
            kinds = set()
            for candidate in alias.candidates:
                if candidate not in table:
                    raise ConfigError(f"{where}: no provider serves the model '{candidate}' "
                                      f"(served: {', '.join(sorted(table)) or 'none'})")
                kinds.add(table[candidate][1].kind)
            if len(kinds) > 1:
                raise ConfigError(f"{where}: mixes chat and embedding models")
        for level, model in (fallback_models or {}).items():
            if model is not None and model not in table:
                raise ConfigError(f"key `policy.fallback_model.{level}`: no provider serves "
                                  f"the model '{model}'")

    def visible_models(self, key: ApiKey) -> list[ModelInfo]:
        table = self._table()
        models = [m for _, m in table.values() if key.allows_model(m.id)]
        for alias in self.aliases.values():
            first = table.get(alias.candidates[0]) if alias.candidates else None
            if first is not None and key.allows_model(alias.name):
                models.append(ModelInfo(alias.name, first[1].kind, "appliance"))
        return models

    def resolve(self, model: str, kind: ModelKind, key: ApiKey) -> Candidates:
        """The candidate routes for ``model`` in preference order. The key's scopes apply to
        the name the client asked for (an alias, not its candidates)."""
        alias = self.aliases.get(model)
        if not key.allows_model(model) or (alias is None and model not in self._table()):
            # A model outside the key's scopes looks exactly like one that does not exist.
            raise ModelNotFound(f"The model '{model}' does not exist or you do not have "
                                "access to it.", param="model")
        if alias is None:
            return Candidates([self.concrete(model, kind)])
        return Candidates([self.concrete(c, kind) for c in alias.candidates], alias)

    def concrete(self, model: str, kind: ModelKind) -> Route:
        """The route to a served model (no key check: policy and aliases choose these)."""
        found = self._table().get(model)
        if found is None:
            raise ModelNotFound(f"The model '{model}' does not exist or you do not have "
                                "access to it.", param="model")
        provider, info = found
        if info.kind != kind:
            raise InvalidRequest(f"The model '{model}' is a {info.kind} model and cannot serve "
                                 f"this {kind} request.", param="model", code="invalid_model")
        return Route(provider, info)

    def rank(self, routes: list[Route], strategy: Strategy) -> list[Route]:
        """``fastest``: lowest smoothed time to first byte first, unmeasured providers before
        measured ones (so they get measured); ties keep the configured order."""
        if strategy == "ordered":
            return routes
        return sorted(routes, key=lambda r: self.health.latency(r.provider.name) or 0.0)
