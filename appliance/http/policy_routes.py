"""``GET /admin/v1/policy``: the routing policy in force, where it came from, and (with
``?key_id=``) what it resolves to for one key once its tenant/department/app overrides apply.
Readers: admin, operator, auditor."""

from __future__ import annotations

import dataclasses
import hashlib

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from appliance.http.admin import READERS, require_role, runtime_of
from appliance.http.responses import JSONResponse, openai_errors


@openai_errors
async def policy(request: Request) -> Response:
    require_role(request, READERS)
    runtime = runtime_of(request)
    holder = runtime.policies
    current = holder.policy
    body: dict[str, object] = {
        "version": current.version, "source": holder.source,
        "sha256": hashlib.sha256(msgspec.json.encode(current)).hexdigest(),
        "policy": msgspec.to_builtins(current)}
    key_id = request.query_params.get("key_id")
    if key_id:
        key = runtime.keys.get(key_id)
        effective = holder.for_owner(key.tenant_id, key.department_id, key.app_id)
        body["effective"] = {"key_id": key.id, **dataclasses.asdict(effective)}
    return JSONResponse(body)


def policy_routes() -> list[Route]:
    return [Route("/admin/v1/policy", policy, methods=["GET"])]
