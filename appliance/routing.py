"""Which provider serves a requested model, and in which order to try the candidates.

A client asks for a concrete model (served by exactly one provider) or for an alias: a name
standing for candidate models across zones in preference order. ``resolve`` turns the name
into candidate routes; the pipeline's route step removes what the zone policy forbids and what
``health`` says is open, and ``rank`` orders what is left. The router fails closed: a model no
provider serves, or one the key may not use, is refused, and a candidate the policy forbids is
never tried.

``rank`` sorts by, in turn:

1. circuit: closed candidates, and half-open ones with a trial slot free (the trials are what
   close a circuit, so they keep their place), before half-open ones without;
2. the request's latency budget (``x-appliance-max-latency-ms`` or the app's policy): a
   candidate whose expected latency (p95 time to first token, plus ``max_tokens`` at its p50
   tokens/s when both are known) exceeds the budget goes after those within it, the least
   slow first. It is never dropped: a slow answer beats none. Unmeasured candidates count as
   within budget;
3. the alias strategy: ``ordered`` (as configured), ``fastest`` (lowest moving average of
   time to first token; unmeasured first, so they get measured), ``cheapest`` (the price of a
   request of 1,000 prompt tokens plus ``max_tokens``, 1,000 when unset; unpriced is free) or
   ``balanced`` (the sum of the places in the fastest and the cheapest orders);
4. the configured order, which breaks every tie.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from appliance.config import AliasConfig, ConfigError
from appliance.errors import InvalidRequest, ModelNotFound
from appliance.health import ProviderHealth
from appliance.keys import ApiKey
from appliance.limits.config import PricingConfig
from appliance.providers.base import ModelInfo, ModelKind, Provider
from appliance.types import EmbeddingRequest, GenerationRequest

Strategy = Literal["ordered", "fastest", "cheapest", "balanced"]
PriceLookup = Callable[[str], PricingConfig | None]
#: The request size ``cheapest`` prices candidates at (prompt, and answer without max_tokens).
PRICED_TOKENS = 1000


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
                 health: ProviderHealth | None = None, price: PriceLookup | None = None
                 ) -> None:
        self.providers = providers
        self.aliases = aliases or {}
        self.health = health or ProviderHealth()
        self.health.cloud_providers = lambda: [p.name for p in self.providers
                                               if p.zone == "cloud"]
        #: A model's price (``limits_policy.prices``), for ``cheapest``; None: all free.
        self.price = price

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

    def rank(self, routes: list[Route], strategy: Strategy, max_latency_ms: int | None = None,
             request: GenerationRequest | EmbeddingRequest | None = None) -> list[Route]:
        """``routes`` (allowed, not open) in the order to try them: see the module docstring."""
        max_tokens = (request.sampling.max_tokens if isinstance(request, GenerationRequest)
                      else None)
        order = self._strategy_order(routes, strategy, max_tokens)
        health = self.health

        def key(index: int) -> tuple[int, int, float, int]:
            route = routes[index]
            name = route.provider.name
            waiting = int(health.state(name) == "half_open" and not health.trial_free(name))
            expected = self.expected_seconds(route, max_tokens)
            over = (max_latency_ms is not None and expected is not None
                    and expected * 1000 > max_latency_ms)
            return waiting, int(over), expected if over and expected else 0.0, order[index]

        return [routes[i] for i in sorted(range(len(routes)), key=key)]

    def expected_seconds(self, route: Route, max_tokens: int | None) -> float | None:
        """p95 time to first token, plus ``max_tokens`` at the p50 tokens/s when measured;
        None before the first measurement."""
        measured = self.health.latency(route.provider.name, route.model.id)
        ttft = measured.ttft.percentile(95) if measured is not None else None
        if measured is None or ttft is None:
            return None
        rate = measured.tokens_per_second.percentile(50)
        return ttft + (max_tokens / rate if max_tokens and rate else 0.0)

    def _strategy_order(self, routes: list[Route], strategy: Strategy,
                        max_tokens: int | None) -> list[int]:
        """Each route's place (0 first) in the strategy's order; ties keep the given order."""
        def places(key: Callable[[int], tuple[int, float]]) -> list[int]:
            place = [0] * len(routes)
            for position, index in enumerate(sorted(range(len(routes)),
                                                    key=lambda i: (key(i), i))):
                place[index] = position
            return place

        if strategy == "ordered":
            return list(range(len(routes)))
        fastest = places(lambda i: self._ttft_key(routes[i]))
        if strategy == "fastest":
            return fastest
        cheapest = places(lambda i: (0, self._price_key(routes[i], max_tokens)))
        if strategy == "cheapest":
            return cheapest
        return places(lambda i: (0, float(fastest[i] + cheapest[i])))

    def _ttft_key(self, route: Route) -> tuple[int, float]:
        measured = self.health.latency(route.provider.name, route.model.id)
        if measured is None or measured.ttft.ewma is None:
            return (0, 0.0)  # unmeasured first, so it gets measured
        return (1, measured.ttft.ewma)

    def _price_key(self, route: Route, max_tokens: int | None) -> float:
        price = self.price(route.model.id) if self.price is not None else None
        if price is None:
            return 0.0
        return (price.input * PRICED_TOKENS + price.output * (max_tokens or PRICED_TOKENS)) / 1e6
