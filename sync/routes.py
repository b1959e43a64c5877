"""The daemon's admin routes for sync (``appliance sync status|now`` talk to these, or read
``state.db`` when the daemon is down)::

    GET  /admin/v1/sync       the sync status (admin, operator, auditor)
    POST /admin/v1/sync/now   run every sync job now and answer when they are done (admin,
                              operator); on a box enrolled while the daemon ran, start the
                              agent first; 409 ``not_enrolled`` on a standalone box
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from appliance.errors import Conflict
from appliance.http.admin import READERS, WRITERS, require_role, runtime_of
from appliance.http.responses import JSONResponse, openai_errors
from sync.enrollment import EnrollmentError
from sync.status import read_status


@openai_errors
async def sync_status(request: Request) -> Response:
    require_role(request, READERS)
    runtime = runtime_of(request)
    status = await asyncio.to_thread(read_status, runtime.data.root)
    status["agent_running"] = runtime.sync_agent is not None
    return JSONResponse(status)


@openai_errors
async def sync_now(request: Request) -> Response:
    require_role(request, WRITERS)
    runtime = runtime_of(request)
    agent = runtime.sync_agent
    if agent is None:  # enrolled since the daemon started? then start syncing now
        try:
            agent = runtime.prepare_sync()
        except EnrollmentError as exc:
            raise Conflict(f"This box's enrollment cannot be read: {exc}",
                           code="not_enrolled") from exc
        if agent is None:
            raise Conflict("This box does not sync: it is not enrolled (`appliance enroll URL "
                           "TOKEN`) or `[sync] enabled = false`.", code="not_enrolled")
        await agent.start()
    errors = await agent.run_now()
    status = await asyncio.to_thread(read_status, runtime.data.root)
    status["agent_running"] = True
    return JSONResponse({"ok": all(e is None for e in errors.values()), "errors": errors,
                         "status": status})


def sync_routes() -> list[Route]:
    return [Route("/admin/v1/sync", sync_status, methods=["GET"]),
            Route("/admin/v1/sync/now", sync_now, methods=["POST"])]
