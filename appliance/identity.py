"""Who can ask: tenants contain departments, departments contain apps, apps hold API keys.

The three levels behave the same (create, list, show, rename, disable), so one table-driven
store serves them all. Disabling a level cuts off every key below it at the next request;
nothing is deleted, so usage and audit records keep pointing at something that exists.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from appliance.errors import Conflict, InvalidRequest, NotFound
from appliance.state import StateDB

Kind = Literal["tenant", "department", "app"]
KINDS: tuple[Kind, ...] = ("tenant", "department", "app")


@dataclass(frozen=True)
class _Level:
    table: str
    prefix: str
    parent_column: str | None
    parent_kind: Kind | None


LEVELS: dict[Kind, _Level] = {
    "tenant": _Level("tenants", "ten_", None, None),
    "department": _Level("departments", "dep_", "tenant_id", "tenant"),
    "app": _Level("apps", "app_", "department_id", "department"),
}


@dataclass(frozen=True, slots=True)
class Entity:
    kind: Kind
    id: str
    name: str
    parent_id: str | None
    created_at: float
    disabled_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidRequest("'name' must be 1 to 128 characters.", param="name")
    return name


class IdentityStore:
    def __init__(self, db: StateDB) -> None:
        self._db = db

    def _columns(self, level: _Level) -> str:
        parent = level.parent_column or "NULL"
        return f"id, name, {parent}, created_at, disabled_at"

    def _row(self, kind: Kind, row: tuple[Any, ...]) -> Entity:
        return Entity(kind, row[0], row[1], row[2], row[3], row[4])

    def get(self, kind: Kind, ident: str) -> Entity:
        """By id, or by name when the name is unique at that level."""
        level = LEVELS[kind]
        rows = self._db.conn.execute(
            f"SELECT {self._columns(level)} FROM {level.table} WHERE id = ? OR name = ?",
            (ident, ident)).fetchall()
        exact = [r for r in rows if r[0] == ident] or rows
        if not exact:
            raise NotFound(f"No {kind} '{ident}'.", param="id")
        if len(exact) > 1:
            raise InvalidRequest(f"Several {kind}s are named '{ident}': use the id.", param="id")
        return self._row(kind, exact[0])

    def create(self, kind: Kind, name: str, parent: str | None = None) -> Entity:
        level = LEVELS[kind]
        name = _check_name(name)
        parent_id = None
        if level.parent_kind is not None:
            if parent is None:
                raise InvalidRequest(f"A {kind} needs its {level.parent_kind}.",
                                     param=f"{level.parent_kind}_id")
            owner = self.get(level.parent_kind, parent)
            if owner.disabled_at is not None:
                raise InvalidRequest(f"The {level.parent_kind} '{owner.name}' is disabled.",
                                     param=f"{level.parent_kind}_id")
            parent_id = owner.id
        entity = Entity(kind, level.prefix + secrets.token_hex(6), name, parent_id, time.time(),
                        None)
        columns = "id, name, created_at" + (f", {level.parent_column}" if parent_id else "")
        values: tuple[Any, ...] = (entity.id, name, entity.created_at) + (
            (parent_id,) if parent_id else ())
        marks = ", ".join("?" * len(values))
        try:
            self._db.conn.execute(f"INSERT INTO {level.table} ({columns}) VALUES ({marks})",
                                  values)
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"A {kind} named '{name}' already exists there.",
                           param="name") from exc
        return entity

    def list(self, kind: Kind, parent: str | None = None,
             include_disabled: bool = False) -> list[Entity]:
        level = LEVELS[kind]
        where, args = [], []
        if parent is not None and level.parent_column and level.parent_kind:
            where.append(f"{level.parent_column} = ?")
            args.append(self.get(level.parent_kind, parent).id)
        if not include_disabled:
            where.append("disabled_at IS NULL")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._db.conn.execute(
            f"SELECT {self._columns(level)} FROM {level.table}{clause} ORDER BY created_at",
            args).fetchall()
        return [self._row(kind, r) for r in rows]

    def rename(self, kind: Kind, ident: str, name: str) -> Entity:
        entity = self.get(kind, ident)
        try:
            self._db.conn.execute(f"UPDATE {LEVELS[kind].table} SET name = ? WHERE id = ?",
                                  (_check_name(name), entity.id))
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"A {kind} named '{name}' already exists there.",
                           param="name") from exc
        return self.get(kind, entity.id)

    def disable(self, kind: Kind, ident: str) -> Entity:
        entity = self.get(kind, ident)
        self._db.conn.execute(
            f"UPDATE {LEVELS[kind].table} SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL",
            (time.time(), entity.id))
        return self.get(kind, entity.id)
