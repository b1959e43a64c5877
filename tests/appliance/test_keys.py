from __future__ import annotations

import time
from pathlib import Path

import pytest

from appliance.datadir import DataDir
from appliance.errors import InvalidRequest
from appliance.identity import IdentityStore
from appliance.keys import KEY_PREFIX, KeyStore
from appliance.state import StateDB


@pytest.fixture
def db(tmp_path: Path) -> StateDB:
    data = DataDir(tmp_path / "data")
    data.create()
    return StateDB(data.state_db)


@pytest.fixture
def store(db: StateDB) -> KeyStore:
    return KeyStore(db, b"\x00" * 32)


@pytest.fixture
def app_id(db: StateDB) -> str:
    identity = IdentityStore(db)
    identity.create("tenant", "St. Mary")
    identity.create("department", "Cardiology", "St. Mary")
    return identity.create("app", "ward", "Cardiology").id


def test_create_and_lookup(store: KeyStore, app_id: str) -> None:
    plaintext, key = store.create("ward app", role="client", scopes=("gemma-3-270m",),
                                  app_id=app_id)
    assert plaintext.startswith(KEY_PREFIX) and len(plaintext) == len(KEY_PREFIX) + 43
    found = store.lookup(plaintext)
    assert found is not None and found.id == key.id and found.role == "client"
    assert found.allows_model("gemma-3-270m") and not found.allows_model("gpt-4o")
    assert found.tenant_id is not None and found.department_id is not None
    assert store.lookup(plaintext + "x") is None
    assert store.lookup("Bearer " + plaintext) is None


def test_client_keys_need_an_app_and_admin_keys_none(store: KeyStore, app_id: str) -> None:
    with pytest.raises(InvalidRequest):
        store.create("orphan", role="client")
    with pytest.raises(InvalidRequest):
        store.create("odd admin", role="admin", app_id=app_id)
    with pytest.raises(InvalidRequest):
        store.create("x", role="wizard")


def test_disabling_any_level_cuts_off_its_keys(db: StateDB, store: KeyStore,
                                                app_id: str) -> None:
    identity = IdentityStore(db)
    for kind, name in (("app", "ward"), ("department", "Cardiology"), ("tenant", "St. Mary")):
        plaintext, _ = store.create("k", app_id=app_id)
        assert store.lookup(plaintext) is not None
        identity.disable(kind, name)  # type: ignore[arg-type]
        assert store.lookup(plaintext) is None
        db.conn.execute(f"UPDATE {kind}s SET disabled_at = NULL")


def test_expired_and_revoked_keys_fail(db: StateDB, store: KeyStore) -> None:
    plaintext, key = store.create("old", role="admin", expires_at=time.time() + 60)
    assert store.lookup(plaintext) is not None
    db.conn.execute("UPDATE api_keys SET expires_at = ? WHERE id = ?", (time.time() - 1, key.id))
    assert store.lookup(plaintext) is None
    plaintext, key = store.create("gone", role="admin")
    assert store.revoke(key.id).revoked_at is not None
    assert store.lookup(plaintext) is None
    assert key.id not in [k.id for k in store.list()]
    assert {k.id for k in store.list(include_revoked=True)} >= {key.id}


def test_another_connection_revoking_or_disabling_takes_effect_at_once(
        db: StateDB, store: KeyStore, app_id: str) -> None:
    """The CLI is another process: its commit must be seen by the very next lookup, although
    the daemon keeps keys it has looked up in memory."""
    plaintext, key = store.create("k", app_id=app_id)
    for _ in range(3):  # looked up, then served from memory
        assert store.lookup(plaintext) is not None
    other = StateDB(db.path)
    try:
        IdentityStore(other).disable("app", "ward")
        assert store.lookup(plaintext) is None
        other.conn.execute("UPDATE apps SET disabled_at = NULL")
        assert store.lookup(plaintext) is not None
        KeyStore(other, b"\x00" * 32).revoke(key.id)
        assert store.lookup(plaintext) is None
    finally:
        other.close()


def test_lookups_read_the_row_again_only_after_a_change(db: StateDB, store: KeyStore,
                                                        app_id: str) -> None:
    plaintext, key = store.create("k", app_id=app_id)
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        for _ in range(3):
            assert store.lookup(plaintext) is not None
        selects = [s for s in statements if "FROM api_keys" in s]
        assert len(selects) == 1  # then the same row from memory
        db.conn.execute("UPDATE api_keys SET name = 'renamed' WHERE id = ?", (key.id,))
        found = store.lookup(plaintext)
        assert found is not None and found.name == "renamed"
    finally:
        db.conn.set_trace_callback(None)


def test_the_database_is_asked_only_when_the_wal_moved(db: StateDB, store: KeyStore,
                                                       app_id: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """While the WAL file keeps its time and size, lookups do not even ask SQLite whether
    anything changed; a commit that left them alone (two in one clock tick) is still seen
    within ``_RECHECK_S``."""
    import os

    import appliance.keys as keys

    plaintext, key = store.create("k", app_id=app_id)
    for _ in range(2):  # the first writes last_used_at, which the second checks
        assert store.lookup(plaintext) is not None
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        for _ in range(5):
            assert store.lookup(plaintext) is not None
        assert not [s for s in statements if "data_version" in s]
    finally:
        db.conn.set_trace_callback(None)
    frozen = os.stat(f"{db.path}-wal")
    monkeypatch.setattr(keys, "_stat", lambda path: frozen)  # the WAL looks unchanged
    other = StateDB(db.path)
    try:
        KeyStore(other, b"\x00" * 32).revoke(key.id)
    finally:
        other.close()
    time.sleep(keys._RECHECK_S + 0.02)  # noqa: SLF001
    assert store.lookup(plaintext) is None


def test_hash_depends_on_master_key(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    data.create()
    db = StateDB(data.state_db)
    plaintext, _ = KeyStore(db, data.master_key()).create("x", role="admin")
    assert KeyStore(db, b"\x01" * 32).lookup(plaintext) is None


def test_secrets_are_0600_and_credentials_directory_wins(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    data = DataDir(tmp_path / "data")
    data.create()
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    key = data.master_key()
    assert (data.secrets / "master.key").stat().st_mode & 0o777 == 0o600
    assert data.master_key() == key
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "master.key").write_bytes(b"\x02" * 32)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert data.master_key() == b"\x02" * 32
