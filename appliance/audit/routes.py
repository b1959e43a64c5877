"""``GET /admin/v1/audit``: decrypting search and export of the audit log, for ``admin`` and
``auditor`` keys only (operators manage the appliance; they do not read the record of it).

    GET /admin/v1/audit?since=2025-01-01&tenant=t_1&sensitivity=confidential&limit=50
    -> {"object": "list", "data": [{"seq", "time", "type", ...}, ...], "has_more": false}
    GET /admin/v1/audit?format=jsonl&model=gemma-3-270m
    -> every match as one JSON object per line (application/x-ndjson), streamed

The filters are those of ``appliance audit search|export`` (``Filters``), records come oldest
first, in the CLI's export form. Decrypting is a full scan, so it runs in worker threads, never
on the event loop; it reads beside the running writer (see ``query``). Every read is itself
recorded (``audit_read``, with the parameters) before any record leaves: a read that cannot be
audited fails closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from appliance.audit.query import SENSITIVITY_LEVELS, Filters, as_json_object, search
from appliance.audit.records import Record
from appliance.audit.segments import FormatError
from appliance.errors import ApplianceError, InvalidRequest
from appliance.http.admin import require_role, runtime_of
from appliance.http.responses import JSONResponse, openai_errors
from appliance.limits.report import parse_time

#: Unlike the other admin routes' READERS, operators may not read the log.
AUDIT_READERS = ("admin", "auditor")
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
_CHOICES: dict[str, tuple[str, ...]] = {
    "type": ("request", "admin"),
    "sensitivity": SENSITIVITY_LEVELS,
    "action": ("allow", "redact", "reroute", "block"),
    "format": ("json", "jsonl"),
}
_TEXT = ("tenant", "department", "app", "key_id", "user", "model", "zone")
_PARAMS = frozenset({"since", "until", "limit", *_CHOICES, *_TEXT})
_CHUNK_BYTES = 64 * 1024
_Matches = Iterator[tuple[int, Record]]


def _moment(params: QueryParams, name: str) -> datetime | None:
    seconds = parse_time(params.get(name), name)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidRequest(f"'{name}' is out of range.", param=name) from exc


def _choice(params: QueryParams, name: str) -> str | None:
    value = params.get(name) or None
    if value is not None and value not in _CHOICES[name]:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(_CHOICES[name])}.",
                             param=name)
    return value


def _limit(params: QueryParams) -> int:
    text = params.get("limit") or str(DEFAULT_LIMIT)
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidRequest(f"'limit' must be an integer from 1 to {MAX_LIMIT}.",
                             param="limit")
    return int(text)


def parse_filters(params: QueryParams) -> Filters:
    """The query string as ``Filters``; an unknown or malformed parameter is a 400 naming it
    (a mistyped filter must not silently widen an auditor's search)."""
    for name in params:
        if name not in _PARAMS:
            raise InvalidRequest(f"Unknown query parameter '{name}'.", param=name)
    text = {name: params.get(name) or None for name in _TEXT}
    return Filters(since=_moment(params, "since"), until=_moment(params, "until"),
                   type=_choice(params, "type"), sensitivity=_choice(params, "sensitivity"),
                   action=_choice(params, "action"), **text)


@contextmanager
def _reading() -> Iterator[None]:
    try:
        yield
    except (InvalidTag, FormatError) as exc:
        raise ApplianceError("The audit log could not be read; `appliance audit verify` "
                             "names the damage.") from exc


def _page(matches: _Matches) -> list[dict[str, Any]]:
    with _reading():
        return [as_json_object(seq, record) for seq, record in matches]


def _next_chunk(matches: _Matches) -> bytes:
    """About ``_CHUNK_BYTES`` of JSON lines (b"" at the end): one thread hop per chunk."""
    lines: list[bytes] = []
    size = 0
    with _reading():
        for seq, record in matches:
            lines.append(msgspec.json.encode(as_json_object(seq, record)) + b"\n")
            size += len(lines[-1])
            if size >= _CHUNK_BYTES:
                break
    return b"".join(lines)


async def _chunks(first: bytes, matches: _Matches) -> AsyncIterator[bytes]:
    chunk = first
    while chunk:
        yield chunk
        chunk = await run_in_threadpool(_next_chunk, matches)


@openai_errors
async def audit_records(request: Request) -> Response:
    caller = require_role(request, AUDIT_READERS)
    params = request.query_params
    filters = parse_filters(params)
    limit = _limit(params)
    jsonl = _choice(params, "format") == "jsonl"
    runtime = runtime_of(request)
    detail = {name: value for name, value in params.items() if value}
    if jsonl:
        # Every match, unless a limit was asked for; the first chunk is read before the
        # status is sent, so a log that cannot be read is still a proper error response.
        matches = search(runtime.data, filters, limit if params.get("limit") else None)
        first = await run_in_threadpool(_next_chunk, matches)
        await runtime.record_admin_event("audit_read", caller.id, **detail)
        return StreamingResponse(_chunks(first, matches), media_type="application/x-ndjson")
    found = await run_in_threadpool(_page, search(runtime.data, filters, limit + 1))
    await runtime.record_admin_event("audit_read", caller.id, **detail,
                                     returned=str(min(len(found), limit)))
    return JSONResponse({"object": "list", "data": found[:limit],
                         "has_more": len(found) > limit})


def audit_routes() -> list[Route]:
    return [Route("/admin/v1/audit", audit_records, methods=["GET"])]
