from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import Conflict, InvalidRequest, NotFound
from appliance.identity import IdentityStore
from appliance.state import StateDB


@pytest.fixture
def identity(tmp_path: Path) -> IdentityStore:
    return IdentityStore(StateDB(tmp_path / "state.db"))


def test_hierarchy(identity: IdentityStore) -> None:
    tenant = identity.create("tenant", "St. Mary")
    dept = identity.create("department", "Cardiology", tenant.id)
    app = identity.create("app", "ward", "Cardiology")  # parents by name too
    assert (dept.parent_id, app.parent_id) == (tenant.id, dept.id)
    assert [e.name for e in identity.list("department", "St. Mary")] == ["Cardiology"]
    assert identity.get("app", app.id) == app


def test_rules(identity: IdentityStore) -> None:
    identity.create("tenant", "A")
    with pytest.raises(Conflict):
        identity.create("tenant", "A")
    with pytest.raises(InvalidRequest):
        identity.create("department", "D")  # no tenant
    with pytest.raises(NotFound):
        identity.create("department", "D", "nope")
    with pytest.raises(InvalidRequest):
        identity.create("tenant", "  ")
    identity.disable("tenant", "A")
    with pytest.raises(InvalidRequest):
        identity.create("department", "D", "A")
    assert identity.list("tenant") == []
    assert len(identity.list("tenant", include_disabled=True)) == 1
    identity.create("tenant", "B")
    assert identity.rename("tenant", "B", "C").name == "C"
