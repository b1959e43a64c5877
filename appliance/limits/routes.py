"""``GET /admin/v1/usage`` and ``GET|PUT /admin/v1/limits/{kind}/{id}`` for admin,
operator (and, reading, auditor) keys.

    GET /admin/v1/usage?group_by=department,model&since=2025-01-01&until=2025-02-01
    -> {"object": "list", "group_by": [...], "data": [{department, model, requests, ...}]}

Thin handlers: the report is ``usage_report``, the limits are the runtime's ``Limiter``
(which the lead's Runtime exposes as ``runtime.limiter``).
"""

from __future__ import annotations


import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from appliance.http.admin import READERS, WRITERS, require_role, runtime_of
from appliance.http.responses import JSONResponse, openai_errors
from appliance.limits.report import parse_group_by, parse_time, usage_report
from appliance.limits.store import check_kind
from appliance.openai_schema import decode


class LimitsUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    rpm: int | None = None
    tpm: int | None = None
    tpd: int | None = None
    monthly_budget_micros: int | None = None


@openai_errors
async def usage(request: Request) -> Response:
    require_role(request, READERS)
    params = request.query_params
    group_by = parse_group_by(params.get("group_by"))
    since, until = parse_time(params.get("since"), "since"), parse_time(params.get("until"),
                                                                        "until")
    db = runtime_of(request).db
    assert db is not None
    rows = usage_report(db.conn, group_by, since, until)
    return JSONResponse({"object": "list", "group_by": group_by, "data": rows})


@openai_errors
async def limits(request: Request) -> Response:
    kind, scope_id = check_kind(request.path_params["kind"]), request.path_params["id"]
    limiter = runtime_of(request).limiter
    if request.method == "GET":
        require_role(request, READERS)
    else:
        caller = require_role(request, WRITERS)
        body: LimitsUpdate = decode(await request.body(), LimitsUpdate)
        limiter.set_limits(kind, scope_id, **msgspec.structs.asdict(body))
        await runtime_of(request).record_admin_event("policy_changed", caller.id,
                                                   change="limits set",
                                                   scope=f"{kind}:{scope_id}")
    return JSONResponse({"kind": kind, "id": scope_id,
                         **limiter.effective_limits(kind, scope_id).to_dict()})


def limits_routes() -> list[Route]:
    return [Route("/admin/v1/usage", usage, methods=["GET"]),
            Route("/admin/v1/limits/{kind}/{id}", limits, methods=["GET", "PUT"])]
