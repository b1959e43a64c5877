"""``appliance central``: a real central process on loopback, its CLI and its SQLite state.

Enrollment, signed-request authentication, idempotent ingestion, heartbeat, the fleet view
and usage totals. The TUF side (publish and fetch, attacks) is in ``test_trust.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import sqlite3
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.audit.checkpoints import line_digest, sign_checkpoint
from appliance.audit.crypto import SigningKey

from sync.signing import generate_key, public_key_b64, sign_headers
from tests.sync.central_support import (CentralProcess, EnrolledBox, central_server,
                                        create_enrollment_token, enroll_box, publish_policy,
                                        run_central_cli)

HARDWARE = {"hardware": {"cpu_model": "Test CPU", "cores_logical": 8, "ram_bytes": 16 * 2**30,
                         "gpus": [{"name": "NVIDIA L4", "vendor": "nvidia"}]}}


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralProcess]:
    with central_server(tmp_path_factory.mktemp("central") / "data") as proc:
        yield proc


@pytest.fixture(scope="module")
def box(central: CentralProcess) -> EnrolledBox:
    return enroll_box(central, "box-main", hardware=HARDWARE)


def _enroll(central: CentralProcess, token: str) -> httpx.Response:
    return httpx.post(central.url + "/v1/enroll", timeout=30, json={
        "token": token, "name": "x.local", "public_key": public_key_b64(generate_key())})


def _error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


def _usage_row(**fields: Any) -> dict[str, Any]:
    row = {"time": time.time(), "request_id": f"req_{uuid.uuid4().hex}", "tenant_id": "t1",
           "department_id": "radiology", "app_id": "a1", "key_id": "k1", "user": None,
           "model_requested": "auto", "model_served": "gemma-3-270m", "provider": "local",
           "zone": "device", "prompt_tokens": 10, "completion_tokens": 20, "cached_tokens": 0,
           "cost_micros": 5, "cache_hit": False, "latency_ms": 12.5, "status": 200,
           "requests": 1, "aggregate": False}
    return {**row, **fields}


# --- process, config, data directory -----------------------------------------------------


def test_data_dir_and_secrets_are_private(central: CentralProcess) -> None:
    data = central.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "secrets" / "admin.token").stat().st_mode) == 0o600
    keys = list((data / "secrets" / "tuf").glob("*.pem"))
    assert len(keys) == 4  # one each for root, targets, snapshot, timestamp
    assert all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)
    mode = sqlite3.connect(data / "state.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert central.url.startswith("http://127.0.0.1:")


def test_unknown_config_key_is_refused_by_name(tmp_path: Path) -> None:
    config = tmp_path / "central.toml"
    config.write_text("[tuf]\ntimestamp_expiry_secs = 10\n")
    result = run_central_cli("serve", "--port", "0", data_dir=tmp_path / "d", config=config)
    assert result.returncode == 1
    assert "unknown key `tuf.timestamp_expiry_secs`" in result.stderr
    config.write_text("[tuf]\nroot_keys = 1\nroot_threshold = 2\n")
    result = run_central_cli("fleet", data_dir=tmp_path / "d", config=config)
    assert result.returncode == 1 and "root_threshold" in result.stderr


def test_sigterm_exits_zero(tmp_path: Path) -> None:
    with central_server(tmp_path / "data") as proc:
        assert httpx.get(proc.url + "/health", timeout=30).json()["ok"] is True
        assert proc.stop(signal.SIGTERM) == 0


# --- enrollment ----------------------------------------------------------------------------


def test_enrollment_returns_box_id_and_trust_root(central: CentralProcess) -> None:
    result = run_central_cli("enroll-token", "create", "--name", "box-enroll",
                             data_dir=central.data_dir)
    assert result.returncode == 0, result.stderr
    token = next(w for w in result.stdout.split() if w.startswith("apt_enr_"))
    assert len(token) == len("apt_enr_") + 43  # 32 bytes, urlsafe base64 without padding
    response = _enroll(central, token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["box_id"].startswith("box_")
    assert body["root"]["signed"]["_type"] == "root"
    assert body["central"] == {"name": "central"}
    # Only the hash of the token is stored.
    db = sqlite3.connect(central.data_dir / "state.db")
    stored = [r[0] for r in db.execute("SELECT token_hash FROM enrollment_tokens")]
    assert token not in stored and len(stored[0]) == 64


def test_replayed_unknown_and_expired_tokens_are_refused(central: CentralProcess) -> None:
    token = create_enrollment_token(central.data_dir, "box-once")
    assert _enroll(central, token).status_code == 200
    replay = _enroll(central, token)
    assert replay.status_code == 401
    assert _error_code(replay) == "enrollment_token_used"
    assert replay.json()["error"]["type"] == "authentication_error"

    unknown = _enroll(central, "apt_enr_" + "A" * 43)
    assert (unknown.status_code, _error_code(unknown)) == (401, "enrollment_token_invalid")

    expired = create_enrollment_token(central.data_dir, "box-late", ttl_hours=1e-6)
    time.sleep(0.1)  # the token lived 3.6 ms
    response = _enroll(central, expired)
    assert (response.status_code, _error_code(response)) == (401, "enrollment_token_expired")


def test_enrollment_body_is_validated(central: CentralProcess) -> None:
    token = create_enrollment_token(central.data_dir, "box-bad")
    bad_key = httpx.post(central.url + "/v1/enroll", timeout=30,
                         json={"token": token, "name": "x", "public_key": "AAAA"})
    assert bad_key.status_code == 400 and "public_key" in bad_key.json()["error"]["message"]
    extra = httpx.post(central.url + "/v1/enroll", timeout=30,
                       json={"token": token, "public_key": "AAAA", "nmae": "x"})
    assert extra.status_code == 400 and "nmae" in extra.json()["error"]["message"]
    bad_audit_key = httpx.post(central.url + "/v1/enroll", timeout=30, json={
        "token": token, "public_key": public_key_b64(generate_key()),
        "audit_public_key": "AAAA"})
    assert bad_audit_key.status_code == 400 and "audit_public_key" in bad_audit_key.text
    # A refused body does not use the token up.
    assert _enroll(central, token).status_code == 200


# --- signed requests -----------------------------------------------------------------------


def _post_signed(central: CentralProcess, headers: dict[str, str], body: bytes,
                 path: str = "/v1/heartbeat") -> httpx.Response:
    return httpx.post(central.url + path, content=body, timeout=30,
                      headers={**headers, "content-type": "application/json"})


def test_signed_request_is_accepted(central: CentralProcess, box: EnrolledBox) -> None:
    with box.client() as client:
        response = client.post("/v1/heartbeat", json={"policy_version": 0})
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True
    assert abs(response.json()["server_time"] - time.time()) < 3600


def test_unsigned_and_badly_signed_requests_get_distinct_codes(central: CentralProcess,
                                                               box: EnrolledBox) -> None:
    body = b'{"policy_version": 1}'
    unsigned = httpx.post(central.url + "/v1/heartbeat", content=body, timeout=30)
    assert (unsigned.status_code, _error_code(unsigned)) == (401, "signature_missing")

    forged = sign_headers(generate_key(), box.box_id, "POST", "/v1/heartbeat", body)
    response = _post_signed(central, forged, body)
    assert (response.status_code, _error_code(response)) == (401, "signature_invalid")

    other_body = sign_headers(box.key, box.box_id, "POST", "/v1/heartbeat", b"{}")
    response = _post_signed(central, other_body, body)
    assert (response.status_code, _error_code(response)) == (401, "signature_invalid")

    other_path = sign_headers(box.key, box.box_id, "POST", "/v1/usage", body)
    response = _post_signed(central, other_path, body)
    assert (response.status_code, _error_code(response)) == (401, "signature_invalid")

    stranger = sign_headers(box.key, "box_nobody", "POST", "/v1/heartbeat", body)
    response = _post_signed(central, stranger, body)
    assert (response.status_code, _error_code(response)) == (401, "unknown_box")


def test_stale_and_replayed_requests_are_refused(central: CentralProcess,
                                                 box: EnrolledBox) -> None:
    body = b"{}"
    stale = sign_headers(box.key, box.box_id, "POST", "/v1/heartbeat", body,
                         now=time.time() - 3600)
    response = _post_signed(central, stale, body)
    assert (response.status_code, _error_code(response)) == (401, "stale_request")
    future = sign_headers(box.key, box.box_id, "POST", "/v1/heartbeat", body,
                          now=time.time() + 3600)
    assert _error_code(_post_signed(central, future, body)) == "stale_request"

    fresh = sign_headers(box.key, box.box_id, "POST", "/v1/heartbeat", body)
    assert _post_signed(central, fresh, body).status_code == 200
    replay = _post_signed(central, fresh, body)
    assert (replay.status_code, _error_code(replay)) == (401, "replayed_nonce")


def test_revoked_box_is_refused(central: CentralProcess) -> None:
    revoked = enroll_box(central, "box-revoked")
    with revoked.client() as client:
        assert client.post("/v1/heartbeat", json={}).status_code == 200
        result = run_central_cli("boxes", "revoke", revoked.box_id, data_dir=central.data_dir)
        assert result.returncode == 0, result.stderr
        response = client.post("/v1/heartbeat", json={})
    assert (response.status_code, _error_code(response)) == (401, "unknown_box")


# --- ingestion -----------------------------------------------------------------------------


def _totals(central: CentralProcess, group_by: str) -> list[dict[str, Any]]:
    with central.admin_client() as admin:
        response = admin.get("/v1/usage/totals", params={"group_by": group_by})
    assert response.status_code == 200, response.text
    totals: list[dict[str, Any]] = response.json()["totals"]
    return totals


def test_usage_ingestion_is_idempotent(central: CentralProcess) -> None:
    box = enroll_box(central, "box-usage")
    rows = [_usage_row(), _usage_row(department_id="oncology", cost_micros=7),
            _usage_row(request_id=None, requests=5, aggregate=True, prompt_tokens=100,
                       completion_tokens=200, cost_micros=50)]
    batch = {"batch_id": str(uuid.uuid4()), "seq": 1, "rows": rows}
    with box.client() as client:
        first = client.post("/v1/usage", json=batch)
        assert first.json() == {"acked_seq": 1, "duplicate": False}
        again = client.post("/v1/usage", json=batch)  # the ack was lost; the box re-sends
        assert again.status_code == 200
        assert again.json() == {"acked_seq": 1, "duplicate": True}

        conflict = client.post("/v1/usage", json={**batch, "batch_id": str(uuid.uuid4())})
        assert (conflict.status_code, _error_code(conflict)) == (409, "sequence_conflict")
        renumbered = client.post("/v1/usage", json={**batch, "seq": 9})
        assert (renumbered.status_code, _error_code(renumbered)) == (409, "batch_conflict")
        bad = client.post("/v1/usage", json={"batch_id": "b", "seq": 2,
                                             "rows": [_usage_row(prompt_tokens=-1)]})
        assert bad.status_code == 400 and "rows[0].prompt_tokens" in bad.text

        second = client.post("/v1/usage", json={"batch_id": str(uuid.uuid4()), "seq": 3,
                                                "rows": [_usage_row(model_served=None,
                                                                    model_requested="gpt-x")]})
        assert second.json() == {"acked_seq": 3, "duplicate": False}

    mine = [t for t in _totals(central, "box,department,model") if t["box"] == box.box_id]
    assert {(t["department"], t["model"]): t["requests"] for t in mine} == {
        ("radiology", "gemma-3-270m"): 6, ("oncology", "gemma-3-270m"): 1,
        ("radiology", "gpt-x"): 1}
    radiology = next(t for t in mine if (t["department"], t["model"]) ==
                     ("radiology", "gemma-3-270m"))
    assert radiology["prompt_tokens"] == 110 and radiology["completion_tokens"] == 220
    assert radiology["cost_micros"] == 55
    box_total = next(t for t in _totals(central, "box") if t["box"] == box.box_id)
    assert box_total["requests"] == 8 and box_total["cost_micros"] == 5 + 7 + 50 + 5


def _signed_lines(key: SigningKey, indexes: range, prev: str = "") -> list[str]:
    """Checkpoint lines as the box's audit writer signs them, each linked to the one before."""
    lines = []
    for index in indexes:
        head = hashlib.sha256(f"records up to {index * 100}".encode()).digest()
        line = sign_checkpoint(key, index, index * 100, head, 1, time.time(), prev).line()
        prev = line_digest(line)
        lines.append(line.decode().rstrip("\n"))
    return lines


def _new_audit_key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


def _b64(key: SigningKey) -> str:
    return base64.b64encode(key.public_bytes()).decode()


def _push(client: httpx.Client, seq: int, lines: list[str]) -> httpx.Response:
    return client.post("/v1/checkpoints", json={
        "batch_id": str(uuid.uuid4()), "seq": seq, "checkpoints": [{"line": ln} for ln in lines]})


def test_checkpoints_and_heartbeat_show_in_fleet(central: CentralProcess) -> None:
    box = enroll_box(central, "box-fleet", hardware=HARDWARE)
    lines = _signed_lines(_new_audit_key(), range(1, 3))
    with box.client() as client:
        beat = client.post("/v1/heartbeat", json={
            "policy_version": 3, "policy_status": "applied", "outbox_pending": 4,
            "model": "gemma-3-270m", "hardware": HARDWARE,
            "audit_head": {"index": 0, "seq": 0, "head": "ab"}, "appliance_version": "0.1.0"})
        assert beat.status_code == 200, beat.text
        batch = {"batch_id": "cp-1", "seq": 1, "checkpoints": [{"line": ln} for ln in lines]}
        assert client.post("/v1/checkpoints", json=batch).json() == {"acked_seq": 1,
                                                                     "duplicate": False}
        assert client.post("/v1/checkpoints", json=batch).json()["duplicate"] is True
        broken = client.post("/v1/checkpoints", json={
            "batch_id": "cp-2", "seq": 2, "checkpoints": [{"line": '{"index": 3}'}]})
        assert broken.status_code == 400 and "checkpoints[0].line" in broken.text

    with central.admin_client() as admin:
        view = admin.get("/v1/fleet").json()
        assert httpx.get(central.url + "/v1/fleet", timeout=30).status_code == 401
        wrong = httpx.get(central.url + "/v1/fleet", timeout=30,
                          headers={"authorization": "Bearer apt_adm_wrong"})
        assert _error_code(wrong) == "invalid_admin_token"
    entry = next(b for b in view["boxes"] if b["box_id"] == box.box_id)
    assert entry["name"] == "box-fleet" and entry["reported_name"] == "box-fleet.local"
    assert entry["policy_version"] == 3 and entry["policy_status"] == "applied"
    assert entry["outbox_pending"] == 4 and entry["model"] == "gemma-3-270m"
    assert entry["hardware_summary"] == "8 cores, 16.0 GiB RAM, NVIDIA L4"
    assert entry["audit_head"] == {"index": 2, "seq": 200, "head": json.loads(lines[1])["head"],
                                   "source": "checkpoint"}
    # Enrolled without an audit key (an older box): stored, not yet verifiable.
    assert (entry["audit_status"], entry["audit_key_id"]) == ("unverified", None)
    assert entry["enrolled_at"] <= entry["last_contact"]

    cli = run_central_cli("fleet", "--json", data_dir=central.data_dir)
    assert cli.returncode == 0, cli.stderr
    from_cli = next(b for b in json.loads(cli.stdout)["boxes"] if b["box_id"] == box.box_id)
    assert from_cli == entry
    text = run_central_cli("fleet", data_dir=central.data_dir).stdout
    assert "box-fleet" in text and "v3 applied" in text and "NVIDIA L4" in text
    assert "index 2, seq 200" in text and "checkpoints: unverified" in text


def _entry(central: CentralProcess, box_id: str) -> dict[str, Any]:
    with central.admin_client() as admin:
        entry: dict[str, Any] = next(b for b in admin.get("/v1/fleet").json()["boxes"]
                                     if b["box_id"] == box_id)
    return entry


def _forge_head(line: str) -> str:
    fields = json.loads(line)
    return line.replace(fields["head"], "0" * len(fields["head"]))


def test_forged_checkpoints_are_refused_and_shown_in_fleet(central: CentralProcess) -> None:
    key = _new_audit_key()
    box = enroll_box(central, "box-forged", audit_public_key=_b64(key))
    assert _entry(central, box.box_id)["audit_key_id"] == key.key_id
    lines = _signed_lines(key, range(1, 6))
    with box.client() as client:
        assert _push(client, 1, lines[:2]).status_code == 200
        assert _entry(central, box.box_id)["audit_status"] == "verified"
        # The request is the box's, correctly signed; the checkpoint in it is not.
        forged = _push(client, 2, [lines[2], _forge_head(lines[3])])
        assert (forged.status_code, _error_code(forged)) == (409, "checkpoint_invalid")
        assert forged.json()["error"]["message"].startswith(
            "checkpoint index 4: bad signature"), forged.text
        entry = _entry(central, box.box_id)
        assert entry["audit_head"]["index"] == 2  # nothing of the batch was stored
        assert entry["audit_status"].startswith("invalid: checkpoint index 4: bad signature")
        text = run_central_cli("fleet", data_dir=central.data_dir).stdout
        assert "checkpoints: invalid: checkpoint index 4: bad signature" in text

        other = _signed_lines(_new_audit_key(), range(3, 4), prev=line_digest(lines[1].encode()))
        wrong_key = _push(client, 3, other)
        assert _error_code(wrong_key) == "checkpoint_invalid"
        assert f"index 3: signed by key {json.loads(other[0])['key_id']}" in wrong_key.text
        skipped = _push(client, 4, [lines[3]])
        assert "index 4: does not follow checkpoint index 2" in skipped.text
        relinked = _signed_lines(key, range(3, 4), prev="ab" * 32)
        assert "index 3: does not link to checkpoint index 2" in _push(client, 5, relinked).text
        # Validly signed, but not what central holds under that index.
        rewritten = _signed_lines(key, range(2, 3), prev=line_digest(lines[0].encode()))
        assert "index 2: differs from the checkpoint" in _push(client, 6, rewritten).text

        # The real lines are still taken (the box's own re-send included), but the failure
        # stays in the fleet view: it needs a person.
        assert _push(client, 7, lines[1:]).json() == {"acked_seq": 7, "duplicate": False}
    entry = _entry(central, box.box_id)
    assert entry["audit_head"]["index"] == 5
    assert entry["audit_status"].startswith("invalid: checkpoint index 2: differs")


def test_an_older_box_registers_its_audit_key_by_heartbeat(central: CentralProcess) -> None:
    key = _new_audit_key()
    box = enroll_box(central, "box-older")
    with box.client() as client:
        assert _push(client, 1, _signed_lines(key, range(1, 4))).status_code == 200
        assert _entry(central, box.box_id)["audit_status"] == "unverified"
        beat = client.post("/v1/heartbeat", json={"audit_public_key": _b64(key)})
        assert beat.status_code == 200, beat.text
        entry = _entry(central, box.box_id)  # what came before the key is verified with it
        assert (entry["audit_status"], entry["audit_key_id"]) == ("verified", key.key_id)
        assert client.post("/v1/heartbeat", json={"audit_public_key": _b64(key),
                                                  "policy_version": 2}).status_code == 200

        changed = client.post("/v1/heartbeat", json={
            "audit_public_key": _b64(_new_audit_key()), "policy_version": 9})
        assert (changed.status_code, _error_code(changed)) == (409, "audit_key_changed")
        bad = client.post("/v1/heartbeat", json={"audit_public_key": "AAAA"})
        assert bad.status_code == 400 and "audit_public_key" in bad.text
    entry = _entry(central, box.box_id)
    assert entry["audit_key_id"] == key.key_id  # never replaced
    assert entry["policy_version"] == 2  # the refused heartbeat applied nothing
    assert entry["audit_status"].startswith("invalid: the box presented audit key ")


def test_checkpoints_received_before_a_key_that_fail_it_are_shown(
        central: CentralProcess) -> None:
    box = enroll_box(central, "box-early")
    with box.client() as client:
        assert _push(client, 1, _signed_lines(_new_audit_key(), range(1, 3))).status_code == 200
        registered = client.post("/v1/heartbeat", json={"audit_public_key": _b64(
            _new_audit_key())})
        assert registered.status_code == 200  # the key is the box's; its past lines are not
    status = _entry(central, box.box_id)["audit_status"]
    assert status.startswith("invalid: checkpoint index 1: signed by key "), status
    assert "received before the audit key was registered" in status


def test_totals_refuse_unknown_group(central: CentralProcess) -> None:
    with central.admin_client() as admin:
        response = admin.get("/v1/usage/totals", params={"group_by": "box,colour"})
    assert response.status_code == 400 and "colour" in response.text


def test_policy_published_shows_in_fleet_view(tmp_path: Path) -> None:
    with central_server(tmp_path / "data") as proc:
        publish_policy(proc.data_dir, 'version = 4\ndescription = "four"\n')
        with proc.admin_client() as admin:
            assert admin.get("/v1/fleet").json()["policy"]["version"] == 4
