"""Central IT's views: the fleet (one row per box) and usage totals across boxes.

One function per view serves both the admin API and the CLI (which reads the database
directly), so both answer the same question the same way.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sync.central.audit import audit_status, key_id_of
from sync.central.errors import InvalidRequest

#: group_by name -> SQL expression over the usage table
GROUP_BY: dict[str, str] = {
    "box": "box_id", "tenant": "tenant_id", "department": "department_id", "app": "app_id",
    "model": "coalesce(model_served, model_requested)", "provider": "provider", "zone": "zone",
}
MEASURES = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_micros")
_SUMS = ", ".join(f"coalesce(sum({m}), 0)" for m in MEASURES)


def hardware_summary(hardware: dict[str, Any] | None) -> str:
    """``"8 cores, 31.2 GiB RAM, NVIDIA L4"`` from ``appliance hardware --json`` (or its
    ``hardware`` part); "" when the box sent nothing recognisable."""
    if not hardware:
        return ""
    facts = hardware.get("hardware", hardware)
    if not isinstance(facts, dict):
        return ""
    parts: list[str] = []
    cores = facts.get("cores_logical") or facts.get("cores_usable")
    if isinstance(cores, int):
        parts.append(f"{cores} cores")
    ram = facts.get("ram_bytes")
    if isinstance(ram, int | float):
        parts.append(f"{ram / 2**30:.1f} GiB RAM")
    gpus = facts.get("gpus")
    if isinstance(gpus, list):
        names = [str(g.get("name", "GPU")) for g in gpus if isinstance(g, dict)]
        parts.append(", ".join(names) if names else "no GPU")
    return ", ".join(parts)


def fleet(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every enrolled box, newest enrollment last."""
    rows = conn.execute(
        "SELECT id, name, reported_name, enrolled_at, last_contact, revoked_at, policy_version, "
        "policy_status, outbox_pending, model, appliance_version, hardware, audit_head, "
        "audit_public_key, audit_problem FROM boxes ORDER BY enrolled_at").fetchall()
    boxes = []
    for (box_id, name, reported, enrolled, contact, revoked, policy_version, policy_status,
         pending, model, version, hardware_json, beat_head, audit_key, audit_problem) in rows:
        hardware = json.loads(hardware_json) if hardware_json else None
        checkpoint = conn.execute("SELECT idx, seq, head FROM checkpoints WHERE box_id = ? "
                                  "ORDER BY idx DESC LIMIT 1", (box_id,)).fetchone()
        head: dict[str, Any] | None = None
        if checkpoint is not None:
            head = {"index": checkpoint[0], "seq": checkpoint[1], "head": checkpoint[2],
                    "source": "checkpoint"}
        elif beat_head:
            head = {**json.loads(beat_head), "source": "heartbeat"}
        boxes.append({
            "box_id": box_id, "name": name, "reported_name": reported, "enrolled_at": enrolled,
            "last_contact": contact, "revoked_at": revoked, "policy_version": policy_version,
            "policy_status": policy_status, "outbox_pending": pending, "model": model,
            "appliance_version": version, "hardware": hardware,
            "hardware_summary": hardware_summary(hardware), "audit_head": head,
            "audit_status": audit_status(audit_key, audit_problem),
            "audit_key_id": key_id_of(audit_key),
        })
    return boxes


def parse_group_by(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [n.strip() for n in names if n.strip()]
    for name in names:
        if name not in GROUP_BY:
            raise InvalidRequest(f"unknown group_by `{name}`: use any of {', '.join(GROUP_BY)}")
    if len(set(names)) != len(names):
        raise InvalidRequest("`group_by` names a field twice")
    return names


def usage_totals(conn: sqlite3.Connection, group_by: Sequence[str], since: float | None = None,
                 until: float | None = None) -> list[dict[str, Any]]:
    """Sums of MEASURES per group; ``since`` inclusive, ``until`` exclusive (row time)."""
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
           + (f" GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}" if keys else ""))
    return [dict(zip([*names, *MEASURES], row, strict=True))
            for row in conn.execute(sql, args).fetchall()]


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def format_fleet(boxes: list[dict[str, Any]]) -> str:
    """The fleet as a text table, then one detail line per box (hardware, audit head and
    whether central could verify the box's checkpoints)."""
    if not boxes:
        return "no boxes enrolled (create a token: appliance central enroll-token create)"
    header = (f"{'NAME':<20} {'BOX ID':<28} {'LAST CONTACT':<21} {'POLICY':<16} "
              f"{'OUTBOX':>6}  MODEL")
    lines = [header]
    for box in boxes:
        policy = "-" if box["policy_version"] is None else (
            f"v{box['policy_version']} {box['policy_status'] or ''}".strip())
        name = box["name"] + (" (revoked)" if box["revoked_at"] else "")
        pending = "-" if box["outbox_pending"] is None else str(box["outbox_pending"])
        lines.append(f"{name:<20} {box['box_id']:<28} {_when(box['last_contact']):<21} "
                     f"{policy:<16} {pending:>6}  {box['model'] or '-'}")
    lines.append("")
    for box in boxes:
        head = box["audit_head"]
        audit = "-" if head is None else (
            f"index {head['index']}, seq {head['seq']}, head {head['head'][:16]}…")
        lines.append(f"{box['name']}: enrolled {_when(box['enrolled_at'])}; hardware: "
                     f"{box['hardware_summary'] or '-'}; audit head: {audit}; "
                     f"checkpoints: {box['audit_status']}")
    return "\n".join(lines)
