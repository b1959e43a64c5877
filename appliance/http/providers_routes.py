"""``GET /admin/v1/providers``: each provider's circuit and measured latency, for admin,
operator and auditor keys (``appliance providers status`` prints it).

    -> {"object": "list", "data": [{"name", "zone", "kind", "models", "transport", "proxy",
        "circuit": {"state",
        "reason", "consecutive_failures", "trips", "open_until", "retry_in_seconds",
        "trials_in_flight"}, "latency": {MODEL: null | {"ttft_ms": {"ewma", "p50", "p95",
        "samples"}, "tokens_per_second": {...}}}}]}

``transport`` is the HTTP client in use (``http1``, ``aiohttp``; ``local`` for the model served
here), ``proxy`` the forward proxy the provider is reached through, or null. ``open_until`` is
a Unix time; both it and ``retry_in_seconds`` are null unless the circuit
is open. Latency is null for a model not measured yet.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from appliance.http.admin import READERS, require_role, runtime_of
from appliance.http.responses import JSONResponse, openai_errors


@openai_errors
async def providers(request: Request) -> Response:
    require_role(request, READERS)
    runtime = runtime_of(request)
    configs = {config.name: config for config in runtime.config.providers}
    health = runtime.router.health
    data = []
    for provider in runtime.router.providers:
        models = [model.id for model in provider.models()]
        config = configs.get(provider.name)
        transport = ("local" if config is None else "aiohttp" if config.proxy
                     else config.transport)
        data.append({"name": provider.name, "zone": provider.zone,
                     "kind": config.kind if config else "local", "models": models,
                     "transport": transport, "proxy": (config.proxy or None) if config else None,
                     **health.describe(provider.name, models)})
    return JSONResponse({"object": "list", "data": data})


def providers_routes() -> list[Route]:
    return [Route("/admin/v1/providers", providers, methods=["GET"])]
