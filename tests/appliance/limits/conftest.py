"""Shared pieces for the limits tests: a controllable clock, a key inside a hierarchy, a real
``state.db`` in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.keys import ApiKey
from appliance.state import StateDB

#: 2025-03-31 23:59:00 UTC: a minute before both a day and a month end
NEAR_MONTH_END = 1743465540.0


class Clock:
    def __init__(self, now: float = NEAR_MONTH_END - 3600) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_key(key_id: str = "key_1", app: str = "app_1", department: str = "dep_1",
             tenant: str = "ten_1") -> ApiKey:
    return ApiKey(key_id, key_id, "client", ("*",), "sk-appl-xxxx…", 0.0, app_id=app,
                  department_id=department, tenant_id=tenant)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def key() -> ApiKey:
    return make_key()


@pytest.fixture
def state_db(tmp_path: Path) -> Iterator[StateDB]:
    db = StateDB(tmp_path / "state.db")
    yield db
    db.close()
