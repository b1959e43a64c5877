from __future__ import annotations

import time
from pathlib import Path

import pytest

from appliance.datadir import DataDir
from appliance.keys import KEY_PREFIX, KeyStore
from appliance.state import StateDB


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    data = DataDir(tmp_path / "data")
    data.create()
    return KeyStore(StateDB(data.state_db), data.master_key())


def test_create_and_lookup(store: KeyStore) -> None:
    plaintext, key = store.create("ward app", role="client", scopes=("gemma-3-270m",))
    assert plaintext.startswith(KEY_PREFIX) and len(plaintext) == len(KEY_PREFIX) + 43
    found = store.lookup(plaintext)
    assert found is not None and found.id == key.id and found.role == "client"
    assert found.allows_model("gemma-3-270m") and not found.allows_model("gpt-4o")
    assert store.lookup(plaintext + "x") is None
    assert store.lookup("Bearer " + plaintext) is None


def test_expired_and_revoked_keys_fail(store: KeyStore) -> None:
    plaintext, _ = store.create("old", expires_at=time.time() - 1)
    assert store.lookup(plaintext) is None
    plaintext, key = store.create("gone")
    store._db.conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (time.time(), key.id))
    assert store.lookup(plaintext) is None


def test_hash_depends_on_master_key(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    data.create()
    db = StateDB(data.state_db)
    plaintext, _ = KeyStore(db, data.master_key()).create("x")
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
