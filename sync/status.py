"""What ``appliance sync status`` and ``GET /admin/v1/sync`` show: the state the agent keeps in
``state.db`` (``sync_state``), the outbox, and the enrollment. Readable whether or not the
daemon runs (``state.db`` is in WAL mode: this reader never blocks the daemon)."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sync.enrollment import load_enrollment
from sync.outbox import Outbox
from sync.paths import SyncPaths
from sync.policy_store import load_last_known_good

JOB_NAMES = ("policy", "usage", "checkpoints", "heartbeat")


def read_status(data_dir: Path) -> dict[str, Any]:
    enrollment = load_enrollment(data_dir)
    if enrollment is None:
        return {"enrolled": False}
    state: dict[str, str] = {}
    usage_rows = in_flight = checkpoints = 0
    db_path = data_dir / "state.db"
    if db_path.exists():
        outbox = Outbox(db_path, data_dir / "audit")
        try:
            state = outbox.all_state()
            usage_rows = outbox.pending_usage()
            in_flight = outbox.in_flight_usage()
            checkpoints = outbox.pending_checkpoints()
        except sqlite3.OperationalError:
            pass  # the daemon has not started since the upgrade that added the tables
        finally:
            outbox.close()
    try:
        known_good = load_last_known_good(data_dir)
        version: int | None = known_good[0].version if known_good else None
    except Exception:  # noqa: BLE001 - shown as unknown; the daemon refuses to start on it
        version = None
    jobs = {name: {"last_success": _float(state.get(f"job.{name}.last_success")),
                   "last_error": state.get(f"job.{name}.last_error"),
                   "last_error_at": _float(state.get(f"job.{name}.last_error_at")),
                   "failures": int(state.get(f"job.{name}.failures", "0")),
                   "next_attempt": _float(state.get(f"job.{name}.next_attempt"))}
            for name in JOB_NAMES}
    attempts = [j["next_attempt"] for j in jobs.values() if j["next_attempt"] is not None]
    return {
        "enrolled": True, "box_id": enrollment.box_id, "central_url": enrollment.central_url,
        "central_name": enrollment.central_name, "name": enrollment.name,
        "enrolled_at": enrollment.enrolled_at,
        "last_contact": _float(state.get("last_contact")),
        "last_error": state.get("last_error"), "last_error_at": _float(state.get("last_error_at")),
        "clock_skew_seconds": _float(state.get("clock_skew_seconds")),
        "policy": {"version": version, "status": state.get("policy.status", "none"),
                   "reason": state.get("policy.reason"), "detail": state.get("policy.detail"),
                   "checked_at": _float(state.get("policy.checked_at")),
                   "last_known_good": str(SyncPaths(data_dir).policy_file) if version is not None
                   else None},
        "outbox": {"usage_rows": usage_rows, "usage_rows_in_flight": in_flight,
                   "checkpoints": checkpoints},
        "next_attempt": min(attempts) if attempts else None,
        "jobs": jobs,
    }


def _float(value: str | None) -> float | None:
    return None if value is None else float(value)


def _when(value: float | None, now: float) -> str:
    if value is None:
        return "never"
    stamp = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    delta = value - now
    return f"{stamp} (in {delta:.0f}s)" if delta > 0 else f"{stamp} ({-delta:.0f}s ago)"


def format_status(status: dict[str, Any], now: float | None = None) -> str:
    if not status["enrolled"]:
        return ("not enrolled: this box runs standalone on its local policy "
                "(`appliance enroll URL TOKEN` to join central)")
    now = time.time() if now is None else now
    policy, outbox = status["policy"], status["outbox"]
    version = "none from central" if policy["version"] is None else f"version {policy['version']}"
    state = policy["status"] + (f": {policy['detail']}" if policy["detail"] else "")
    lines = [
        ("box", f"{status['box_id']} ({status['name']})"),
        ("central", f"{status['central_url']}"
                    + (f" ({status['central_name']})" if status["central_name"] else "")),
        ("last contact", _when(status["last_contact"], now)),
        ("last error", "none" if status["last_error"] is None
         else f"{status['last_error']} ({_when(status['last_error_at'], now)})"),
        ("policy", f"{version}, {state}"),
        ("outbox", f"{outbox['usage_rows']} usage rows ({outbox['usage_rows_in_flight']} in "
                   f"flight), {outbox['checkpoints']} checkpoints"),
        ("next attempt", _when(status["next_attempt"], now)),
    ]
    for name, job in status["jobs"].items():
        failing = f", {job['failures']} failures: {job['last_error']}" if job["failures"] else ""
        lines.append((f"  {name}", f"last success {_when(job['last_success'], now)}{failing}"))
    width = max(len(label) for label, _ in lines) + 2
    return "\n".join(f"{label + ':':<{width}}{value}" for label, value in lines)
