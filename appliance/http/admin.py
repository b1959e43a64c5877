"""The admin API under ``/admin/v1``: tenants, departments, apps and API keys.

Roles: ``admin`` may do everything; ``operator`` manages tenants, departments, apps and client
keys; ``auditor`` reads and changes nothing; ``client`` keys get 403 on every route here. The
same operations exist in the CLI (``appliance tenants|departments|apps|keys ...``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from appliance.errors import PermissionDenied
from appliance.http.responses import JSONResponse, openai_errors
from appliance.identity import LEVELS, Kind
from appliance.keys import ApiKey
from appliance.openai_schema import decode
from appliance.pipeline import RequestContext

if TYPE_CHECKING:
    from appliance.runtime import Runtime

READERS = ("admin", "operator", "auditor")
WRITERS = ("admin", "operator")


class EntityCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    tenant_id: str | None = None
    department_id: str | None = None


class EntityUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str


class KeyCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    role: str = "client"
    app_id: str | None = None
    scopes: list[str] = msgspec.field(default_factory=lambda: ["*"])
    expires_at: float | None = None


class KeyUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str | None = None
    scopes: list[str] | None = None
    expires_at: float | None = None


def require_role(request: Request, roles: tuple[str, ...]) -> ApiKey:
    """The caller's key, if its role is one of ``roles``; 401 or 403 otherwise."""
    runtime: Runtime = request.app.state.runtime
    ctx = RequestContext(request_id=request.scope["state"]["request_id"])
    key = runtime.pipeline.authenticate(ctx, request.headers.get("authorization"))
    if key.role not in roles:
        raise PermissionDenied(f"A {key.role} key may not {request.method} "
                               f"{request.url.path}.")
    return key


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _listing(items: list[Any]) -> JSONResponse:
    return JSONResponse({"object": "list", "data": [item.to_dict() for item in items]})


def entity_routes(kind: Kind, plural: str) -> list[Route]:
    parent_field = f"{LEVELS[kind].parent_kind}_id" if LEVELS[kind].parent_kind else None

    @openai_errors
    async def collection(request: Request) -> Response:
        identity = runtime_of(request).identity
        if request.method == "GET":
            require_role(request, READERS)
            parent = request.query_params.get(parent_field) if parent_field else None
            include = request.query_params.get("include_disabled") == "true"
            return _listing(identity.list(kind, parent, include))
        caller = require_role(request, WRITERS)
        body: EntityCreate = decode(await request.body(), EntityCreate)
        parent = getattr(body, parent_field) if parent_field else None
        entity = identity.create(kind, body.name, parent)
        await runtime_of(request).record_admin_event(
            "config_changed", caller.id, change=f"{kind} created", id=entity.id)
        return JSONResponse(entity.to_dict(), status_code=201)

    @openai_errors
    async def item(request: Request) -> Response:
        identity = runtime_of(request).identity
        ident = request.path_params["id"]
        if request.method == "GET":
            require_role(request, READERS)
            return JSONResponse(identity.get(kind, ident).to_dict())
        caller = require_role(request, WRITERS)
        body: EntityUpdate = decode(await request.body(), EntityUpdate)
        entity = identity.rename(kind, ident, body.name)
        await runtime_of(request).record_admin_event(
            "config_changed", caller.id, change=f"{kind} renamed", id=entity.id)
        return JSONResponse(entity.to_dict())

    @openai_errors
    async def disable(request: Request) -> Response:
        caller = require_role(request, WRITERS)
        entity = runtime_of(request).identity.disable(kind, request.path_params["id"])
        await runtime_of(request).record_admin_event(
            "config_changed", caller.id, change=f"{kind} disabled", id=entity.id)
        return JSONResponse(entity.to_dict())

    base = f"/admin/v1/{plural}"
    return [Route(base, collection, methods=["GET", "POST"]),
            Route(base + "/{id}", item, methods=["GET", "PATCH"]),
            Route(base + "/{id}/disable", disable, methods=["POST"])]


def key_routes() -> list[Route]:
    def operator_may_touch(caller: ApiKey, role: str) -> None:
        if caller.role == "operator" and role != "client":
            raise PermissionDenied("An operator key manages client keys only.")

    @openai_errors
    async def collection(request: Request) -> Response:
        keys = runtime_of(request).keys
        if request.method == "GET":
            require_role(request, READERS)
            include = request.query_params.get("include_revoked") == "true"
            return _listing(keys.list(request.query_params.get("app_id"), include))
        caller = require_role(request, WRITERS)
        body: KeyCreate = decode(await request.body(), KeyCreate)
        operator_may_touch(caller, body.role)
        app_id = (runtime_of(request).identity.get("app", body.app_id).id
                  if body.app_id is not None else None)
        plaintext, key = keys.create(body.name, body.role, tuple(body.scopes), body.expires_at,
                                     app_id)
        await runtime_of(request).record_admin_event("key_created", caller.id, key_id=key.id,
                                                   role=key.role)
        return JSONResponse({**key.to_dict(), "key": plaintext}, status_code=201)

    @openai_errors
    async def item(request: Request) -> Response:
        keys = runtime_of(request).keys
        if request.method == "GET":
            require_role(request, READERS)
            return JSONResponse(keys.get(request.path_params["id"]).to_dict())
        caller = require_role(request, WRITERS)
        key = keys.get(request.path_params["id"])
        operator_may_touch(caller, key.role)
        body: KeyUpdate = decode(await request.body(), KeyUpdate)
        updated = keys.update(key.id, name=body.name,
                              scopes=tuple(body.scopes) if body.scopes is not None else None,
                              expires_at=body.expires_at)
        await runtime_of(request).record_admin_event("config_changed", caller.id,
                                                   change="key updated", id=key.id)
        return JSONResponse(updated.to_dict())

    @openai_errors
    async def revoke(request: Request) -> Response:
        caller = require_role(request, WRITERS)
        keys = runtime_of(request).keys
        key = keys.get(request.path_params["id"])
        operator_may_touch(caller, key.role)
        revoked = keys.revoke(key.id)
        await runtime_of(request).record_admin_event("key_revoked", caller.id, key_id=key.id)
        return JSONResponse(revoked.to_dict())

    return [Route("/admin/v1/keys", collection, methods=["GET", "POST"]),
            Route("/admin/v1/keys/{id}", item, methods=["GET", "PATCH"]),
            Route("/admin/v1/keys/{id}/revoke", revoke, methods=["POST"])]


def admin_routes() -> list[Route]:
    return [*entity_routes("tenant", "tenants"), *entity_routes("department", "departments"),
            *entity_routes("app", "apps"), *key_routes()]
