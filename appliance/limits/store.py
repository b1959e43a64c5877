"""Limit definitions and the persisted per-day / per-month counters in ``state.db``.

Definitions live in the ``limits`` table keyed by (scope kind, scope id); a NULL column takes
the config default for that kind. The counters (``limit_counters``) are written by the usage
ledger in the same transaction as the rows they sum, so after any crash they agree with the
ledger; the limiter reads them once at start and keeps them in memory from then on.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from appliance.errors import InvalidRequest
from appliance.state import StateDB

ScopeKind = Literal["key", "app", "department", "tenant"]
SCOPE_KINDS: tuple[ScopeKind, ...] = ("key", "app", "department", "tenant")
LIMIT_FIELDS = ("rpm", "tpm", "tpd", "monthly_budget_micros")


@dataclass(frozen=True, slots=True)
class ScopeLimits:
    """Limits of one scope; None is unlimited (or, in a stored row, "use the default")."""

    rpm: int | None = None
    tpm: int | None = None
    tpd: int | None = None
    monthly_budget_micros: int | None = None

    def over(self, defaults: ScopeLimits) -> ScopeLimits:
        """This row's columns where set, ``defaults`` elsewhere."""
        return ScopeLimits(*(mine if mine is not None else theirs
                             for mine, theirs in zip(self.astuple(), defaults.astuple(),
                                                     strict=True)))

    def astuple(self) -> tuple[int | None, ...]:
        return (self.rpm, self.tpm, self.tpd, self.monthly_budget_micros)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_kind(kind: str) -> ScopeKind:
    if kind not in SCOPE_KINDS:
        raise InvalidRequest(f"'kind' must be one of {', '.join(SCOPE_KINDS)}.", param="kind")
    return kind  # type: ignore[return-value]


class LimitStore:
    """Reads and writes the ``limits`` table on the daemon's (or the CLI's) connection."""

    def __init__(self, db: StateDB) -> None:
        self._db = db

    def set_limits(self, kind: str, scope_id: str, *, rpm: int | None = None,
                   tpm: int | None = None, tpd: int | None = None,
                   monthly_budget_micros: int | None = None) -> ScopeLimits:
        """Replace the scope's row; all None removes it (back to the config defaults)."""
        kind = check_kind(kind)
        limits = ScopeLimits(rpm, tpm, tpd, monthly_budget_micros)
        for name, value in zip(LIMIT_FIELDS, limits.astuple(), strict=True):
            if value is not None and (isinstance(value, bool) or value < 0):
                raise InvalidRequest(f"'{name}' must be a non-negative integer.", param=name)
        if all(v is None for v in limits.astuple()):
            self._db.conn.execute("DELETE FROM limits WHERE scope_kind = ? AND scope_id = ?",
                                  (kind, scope_id))
            return limits
        self._db.conn.execute(
            "INSERT INTO limits(scope_kind, scope_id, rpm, tpm, tpd, monthly_budget_micros,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(scope_kind, scope_id) DO"
            " UPDATE SET rpm = excluded.rpm, tpm = excluded.tpm, tpd = excluded.tpd,"
            " monthly_budget_micros = excluded.monthly_budget_micros,"
            " updated_at = excluded.updated_at",
            (kind, scope_id, *limits.astuple(), time.time()))
        return limits

    def get_limits(self, kind: str, scope_id: str) -> ScopeLimits | None:
        """The stored row, without defaults; None when there is none."""
        row = self._db.conn.execute(
            "SELECT rpm, tpm, tpd, monthly_budget_micros FROM limits"
            " WHERE scope_kind = ? AND scope_id = ?", (check_kind(kind), scope_id)).fetchone()
        return None if row is None else ScopeLimits(*row)

    def list_limits(self) -> list[tuple[str, str, ScopeLimits]]:
        rows = self._db.conn.execute(
            "SELECT scope_kind, scope_id, rpm, tpm, tpd, monthly_budget_micros FROM limits"
            " ORDER BY scope_kind, scope_id")
        return [(r[0], r[1], ScopeLimits(*r[2:])) for r in rows]

    def load_counters(self, day: str, month: str) -> dict[tuple[str, str, str], int]:
        """``{(kind, id, "day"|"month"): used}`` for the current UTC day and month."""
        rows = self._db.conn.execute(
            "SELECT scope_kind, scope_id, span, used FROM limit_counters"
            " WHERE (span = 'day' AND period = ?) OR (span = 'month' AND period = ?)",
            (day, month))
        return {(r[0], r[1], r[2]): int(r[3]) for r in rows}


def utc_periods(now: float) -> tuple[str, str]:
    """The UTC calendar day and month of ``now``: the periods of tpd and monthly budgets."""
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    return day, day[:7]
