"""Usage reports: tokens, cost, requests and cache hits summed over the ledger, grouped by any
of tenant, department, app, key, user, model, provider, zone and day.

One function serves the admin API and the CLI, so both answer the same question the same way.
``model`` is the model that served the request (the requested one when none did); ``day`` is
the UTC calendar day, like the limiter's daily windows.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from appliance.errors import InvalidRequest

#: group_by name -> SQL expression over the usage table
GROUP_BY: dict[str, str] = {
    "tenant": "tenant_id", "department": "department_id", "app": "app_id", "key": "key_id",
    "user": "user", "model": "coalesce(model_served, model_requested)", "provider": "provider",
    "zone": "zone", "day": "strftime('%Y-%m-%d', time, 'unixepoch')",
}
MEASURES = ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost_micros",
            "cache_hits")
_SUMS = ("count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),"
         " coalesce(sum(prompt_tokens + completion_tokens), 0), coalesce(sum(cost_micros), 0),"
         " coalesce(sum(cache_hit), 0)")


def parse_group_by(value: str | Sequence[str] | None) -> list[str]:
    """``"department,model"`` or a list -> validated names (400 naming ``group_by``)."""
    if value is None:
        return []
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [n.strip() for n in names if n.strip()]
    for name in names:
        if name not in GROUP_BY:
            raise InvalidRequest(f"Unknown group_by '{name}': use any of "
                                 f"{', '.join(GROUP_BY)}.", param="group_by")
    if len(set(names)) != len(names):
        raise InvalidRequest("'group_by' names a field twice.", param="group_by")
    return names


def parse_time(value: str | None, param: str) -> float | None:
    """Epoch seconds, or ISO 8601 (a date, or a date and time; UTC unless it says)."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"'{param}' must be epoch seconds or an ISO 8601 date/time.",
                             param=param) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def usage_report(db: sqlite3.Connection, group_by: Sequence[str], since: float | None = None,
                 until: float | None = None) -> list[dict[str, Any]]:
    """One dict per group: the group's fields, then MEASURES; ``since`` inclusive, ``until``
    exclusive; ordered by cost, highest first."""
    names = parse_group_by(group_by)
    where, args = [], []
    if since is not None:
        where.append("time >= ?")
        args.append(since)
    if until is not None:
        where.append("time < ?")
        args.append(until)
    keys = [GROUP_BY[n] for n in names]
    sql = (f"SELECT {', '.join([*keys, _SUMS])} FROM usage"
           + (f" WHERE {' AND '.join(where)}" if where else "")
           + (f" GROUP BY {', '.join(keys)}" if keys else "")
           + f" ORDER BY {len(keys) + 5} DESC")  # the cost_micros column
    rows = [dict(zip([*names, *MEASURES], row, strict=True))
            for row in db.execute(sql, args).fetchall()]
    for name in names:  # ids are what rows keep (names change); reports show both
        table = _NAMED.get(name)
        if table is None:
            continue
        lookup = dict(db.execute(f"SELECT id, name FROM {table}").fetchall())
        for row in rows:
            row[f"{name}_name"] = lookup.get(row[name])
    return rows


#: group_by fields that are ids of named entities, and the table holding their names
_NAMED = {"tenant": "tenants", "department": "departments", "app": "apps", "key": "api_keys"}


def columns(group_by: Sequence[str]) -> list[str]:
    """The report's columns: each group field (with its name after an id field), then
    MEASURES."""
    out: list[str] = []
    for name in group_by:
        out.append(name)
        if name in _NAMED:
            out.append(f"{name}_name")
    return [*out, *MEASURES]


def format_csv(rows: list[dict[str, Any]], group_by: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = columns(group_by)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row[c] if row[c] is not None else "" for c in header])
    return out.getvalue()


def format_table(rows: list[dict[str, Any]], group_by: Sequence[str]) -> str:
    """Aligned columns for a terminal; cost shown in dollars as well as micro-dollars."""
    shown = [*columns(group_by), "cost_usd"]
    cells = [[_cell(row, c) for c in shown] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(shown)]
    numeric = set(MEASURES) | {"cost_usd"}
    lines = ["  ".join(c.upper().rjust(w) if c in numeric else c.upper().ljust(w)
                       for c, w in zip(shown, widths, strict=True)).rstrip()]
    for r in cells:
        lines.append("  ".join(v.rjust(w) if c in numeric else v.ljust(w)
                               for c, v, w in zip(shown, r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _cell(row: dict[str, Any], column: str) -> str:
    if column == "cost_usd":
        return f"{row['cost_micros'] / 1_000_000:.6f}"
    value = row[column]
    return "-" if value is None else str(value)
