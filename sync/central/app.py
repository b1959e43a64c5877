"""Central's HTTP surface (``sync/PROTOCOL.md``): thin handlers over ``Central``.

Each handler reads the body (bounded), authenticates (signed request or admin token),
decodes with msgspec (a bad field is a 400 naming it), calls one function, shapes JSON.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Lifespan

from appliance.validation import describe
from sync.central import enrollment, fleet, ingest
from sync.central.auth import check_admin
from sync.central.errors import CentralError, InvalidRequest, NotFound, PayloadTooLarge

if TYPE_CHECKING:
    from sync.central.server import Central

log = logging.getLogger("sync.central.app")
T = TypeVar("T")


class EnrollRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    token: str
    public_key: str
    name: str = ""
    hardware: dict[str, Any] | None = None
    #: The box's audit public key (raw Ed25519, base64); older boxes send it by heartbeat.
    audit_public_key: str | None = None


def _decode(body: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        problem = describe(exc)
        if problem.kind == "unknown":
            raise InvalidRequest(f"unknown field `{problem.path}`") from exc
        where = f"`{problem.path}`: " if problem.path and problem.kind != "missing" else ""
        raise InvalidRequest(f"{where}{problem.text}") from exc
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from exc


def _wire_path(request: Request) -> str:
    """The path and query as the client sent them: what it signed."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode("utf-8")
    query: bytes = request.scope.get("query_string", b"")
    return (raw + (b"?" + query if query else b"")).decode("latin-1")


def build_app(central: Central, lifespan: Lifespan[Any]) -> Starlette:
    limit = central.config.server.max_body_bytes

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def signed(request: Request) -> tuple[str, bytes]:
        body = await read_body(request)
        box_id = central.authenticator.authenticate(request.method, _wire_path(request),
                                                    request.headers, body, time.time())
        return box_id, body

    def admin(request: Request) -> None:
        check_admin(request.headers.get("authorization"), central.admin_token)

    async def enroll(request: Request) -> Response:
        req = _decode(await read_body(request), EnrollRequest)
        box_id, name = enrollment.enroll(central.db, req.token, req.name, req.public_key,
                                         req.hardware, time.time(), req.audit_public_key)
        log.info("enrolled box %s as %s (%s)", box_id, name, req.name or "no reported name")
        return JSONResponse({"box_id": box_id,
                             "root": json.loads(central.repository.root_bytes()),
                             "central": {"name": central.config.name}})

    async def heartbeat(request: Request) -> Response:
        box_id, body = await signed(request)
        ingest.record_heartbeat(central.db, box_id, _decode(body, ingest.Heartbeat), time.time())
        return JSONResponse({"ok": True, "server_time": time.time()})

    async def usage(request: Request) -> Response:
        box_id, body = await signed(request)
        ack = ingest.ingest_usage(central.db, box_id, _decode(body, ingest.UsageBatch),
                                  time.time())
        return JSONResponse(msgspec.to_builtins(ack))

    async def checkpoints(request: Request) -> Response:
        box_id, body = await signed(request)
        ack = ingest.ingest_checkpoints(central.db, box_id,
                                        _decode(body, ingest.CheckpointBatch), time.time())
        return JSONResponse(msgspec.to_builtins(ack))

    def tuf_file(find: Callable[[str], Any], media_type: str) -> Callable[..., Any]:
        async def handler(request: Request) -> Response:
            await signed(request)
            name = request.path_params["name"]
            path = find(name)
            if path is None:
                raise NotFound(f"no such file `{name}`")
            return Response(path.read_bytes(), media_type=media_type,
                            headers={"cache-control": "no-store"})
        return handler

    async def fleet_view(request: Request) -> Response:
        admin(request)
        policy = central.repository.policy()
        return JSONResponse({
            "boxes": fleet.fleet(central.db.conn),
            "policy": None if policy is None else {"version": policy.version,
                                                   "published_at": policy.published_at},
        })

    async def usage_totals(request: Request) -> Response:
        admin(request)
        params = request.query_params
        group_by = fleet.parse_group_by(params.get("group_by"))
        bounds: dict[str, float | None] = {}
        for name in ("since", "until"):
            value = params.get(name)
            try:
                bounds[name] = float(value) if value else None
            except ValueError as exc:
                raise InvalidRequest(f"`{name}` must be unix seconds") from exc
        rows = fleet.usage_totals(central.db.conn, group_by, bounds["since"], bounds["until"])
        return JSONResponse({"group_by": group_by, "totals": rows})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "name": central.config.name})

    async def central_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CentralError)
        return JSONResponse(exc.to_body(), status_code=exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = {"error": {"message": str(exc.detail), "type": "invalid_request_error",
                          "code": code}}
        return JSONResponse(body, status_code=exc.status_code)

    async def server_error(request: Request, exc: Exception) -> Response:
        return JSONResponse(CentralError("internal error; see central's log").to_body(),
                            status_code=500)

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/enroll", enroll, methods=["POST"]),
        Route("/v1/heartbeat", heartbeat, methods=["POST"]),
        Route("/v1/usage", usage, methods=["POST"]),
        Route("/v1/checkpoints", checkpoints, methods=["POST"]),
        Route("/v1/tuf/metadata/{name}", tuf_file(central.repository.metadata_file,
                                                  "application/json"), methods=["GET"]),
        Route("/v1/tuf/targets/{name}", tuf_file(central.repository.target_file,
                                                 "application/octet-stream"), methods=["GET"]),
        Route("/v1/fleet", fleet_view, methods=["GET"]),
        Route("/v1/usage/totals", usage_totals, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        CentralError: central_error, HTTPException: http_error, Exception: server_error})
