"""The audit log through the real server: every request recorded, verifiable, searchable,
unreadable on disk, and complete after SIGKILLs."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.audit import AuditConfig, AuditLog, RequestRecord
from appliance.audit.segments import list_segments
from tests.conftest import ServerProcess, make_data_dir, run_cli

CHAT = {"model": "gemma-3-270m", "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 1}


def audit_records(data_dir: Path) -> list[dict[str, object]]:
    export = run_cli("audit", "export", "--format", "jsonl", data_dir=data_dir)
    assert export.returncode == 0, export.stderr
    return [json.loads(line) for line in export.stdout.splitlines() if line.strip()]


def test_requests_and_admin_events_are_recorded_and_verifiable(
        tmp_path: Path, fresh_server: list[ServerProcess]) -> None:
    data = make_data_dir(tmp_path)
    proc = ServerProcess(data, "[audit]\ncontent = \"full\"\n").start()
    fresh_server.append(proc)
    canary = "CANARY-patient-Zebediah-Quux-4471"
    with proc.client() as http:
        ok = http.post("/v1/chat/completions", headers={"x-request-id": "audit-ok"},
                       json={**CHAT, "messages": [{"role": "user", "content": canary}]})
        assert ok.status_code == 200
        bad = http.post("/v1/chat/completions", headers={"x-request-id": "audit-404"},
                        json={**CHAT, "model": "nope"})
        assert bad.status_code == 404
        emb = http.post("/v1/embeddings", headers={"x-request-id": "audit-emb"},
                        json={"model": "all-minilm-l6-v2", "input": "x"})
        assert emb.status_code == 200
        created = http.post("/admin/v1/keys", json={"name": "ops", "role": "operator"})
        assert created.status_code == 201
    unauthenticated = httpx.post(proc.url + "/v1/chat/completions", json=CHAT,
                                 headers={"x-request-id": "audit-401"})
    assert unauthenticated.status_code == 401
    assert proc.stop() == 0

    verified = run_cli("audit", "verify", data_dir=data)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    records = audit_records(data)
    by_id = {r.get("request_id"): r for r in records if r.get("type") == "request"}
    assert by_id["audit-ok"].get("status", 200) == 200  # defaults are omitted
    assert by_id["audit-ok"]["model_served"] == "gemma-3-270m"
    assert by_id["audit-ok"]["zone"] == "device"
    assert canary in json.dumps(by_id["audit-ok"]["content"])  # decrypted for the auditor
    assert by_id["audit-404"]["status"] == 404
    assert by_id["audit-401"]["status"] == 401
    assert by_id["audit-emb"]["model_served"] == "all-minilm-l6-v2"
    kinds = [r.get("kind") for r in records if r.get("type") == "admin"]
    assert {"start", "stop", "key_created"} <= set(kinds)
    # ... but nothing under the data directory holds the prompt in plaintext
    for path in data.rglob("*"):
        if path.is_file() and path.stat().st_nlink == 1:  # skip hard-linked model files
            assert canary.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_record(
        tmp_path: Path, fresh_server: list[ServerProcess]) -> None:
    data = make_data_dir(tmp_path)
    config = '[local]\nqueue_size = 64\n[audit]\ndurability = "strict"\n'
    acknowledged: list[str] = []
    for cycle in range(20):
        proc = ServerProcess(data, config).start()
        fresh_server.append(proc)
        stop = threading.Event()

        def load(worker: int) -> None:
            with proc.client(timeout=10) as http:
                n = 0
                while not stop.is_set():
                    request_id = f"c{cycle}-w{worker}-{n}"
                    n += 1
                    try:
                        if worker % 2:
                            r = http.post("/v1/embeddings", headers={"x-request-id": request_id},
                                          json={"model": "all-minilm-l6-v2", "input": "x"})
                        else:
                            r = http.post("/v1/chat/completions",
                                          headers={"x-request-id": request_id}, json=CHAT)
                    except httpx.HTTPError:
                        return
                    if r.status_code == 200:
                        acknowledged.append(request_id)

        workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for w in workers:
            w.start()
        stop.wait(0.3 + 0.05 * cycle)
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGKILL)
        proc.proc.wait(30)
        stop.set()
        for w in workers:
            w.join(30)
    # The next start recovers the torn tail; then everything must verify and be there.
    proc = ServerProcess(data, config).start()
    fresh_server.append(proc)
    verified = run_cli("audit", "verify", data_dir=data)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert proc.stop() == 0
    recorded = {r.get("request_id") for r in audit_records(data) if r.get("type") == "request"}
    missing = [rid for rid in acknowledged if rid not in recorded]
    assert len(acknowledged) > 40
    assert not missing, f"{len(missing)} acknowledged requests have no audit record: {missing[:5]}"


def test_cli_changes_reach_the_audit_log(tmp_path: Path,
                                         fresh_server: list[ServerProcess]) -> None:
    data = make_data_dir(tmp_path)
    stopped = run_cli("tenants", "create", "Offline Clinic", data_dir=data)  # no daemon yet
    assert stopped.returncode == 0, stopped.stderr
    proc = ServerProcess(data, '[local]\nembedding_model = ""\n').start()
    fresh_server.append(proc)
    created = run_cli("keys", "create", "ops", "--role", "operator", "--json", data_dir=data)
    assert created.returncode == 0, created.stderr
    key_id = json.loads(created.stdout)["id"]
    assert run_cli("keys", "revoke", key_id, data_dir=data).returncode == 0
    assert proc.stop() == 0  # the daemon drains the queue at least once more before stopping
    admin = [r for r in audit_records(data) if r.get("type") == "admin"]
    details = [(r["kind"], r.get("actor"), r.get("detail", {})) for r in admin]
    assert any(k == "config_changed" and a == "cli" and d.get("change") == "tenant created"
               for k, a, d in details)
    assert any(k == "key_created" and d.get("key_id") == key_id for k, _, d in details)
    assert any(k == "key_revoked" and d.get("key_id") == key_id for k, _, d in details)


def test_admin_audit_route_filters_streams_refuses_and_is_itself_audited(
        tmp_path: Path, fresh_server: list[ServerProcess]) -> None:
    data = make_data_dir(tmp_path)
    proc = ServerProcess(data).start()
    fresh_server.append(proc)

    def call(method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, proc.url + "/admin/v1" + path, timeout=60,
                             headers={"authorization": f"Bearer {key or proc.admin_key}"},
                             **kwargs)

    tenant = call("POST", "/tenants", json={"name": "Audit Clinic"}).json()
    dept = call("POST", "/departments", json={"name": "Cardio", "tenant_id": tenant["id"]}).json()
    app = call("POST", "/apps", json={"name": "ehr", "department_id": dept["id"]}).json()
    keys = {role: call("POST", "/keys", json={"name": role, "role": role,
                                               "app_id": app["id"] if role == "client" else None}
                       ).json() for role in ("client", "operator", "auditor")}
    client = keys["client"]
    with httpx.Client(base_url=proc.url, timeout=60,
                      headers={"authorization": f"Bearer {client['key']}"}) as http:
        assert http.post("/v1/chat/completions", json=CHAT,
                         headers={"x-request-id": "route-ok"}).status_code == 200
        assert http.post("/v1/chat/completions", json={**CHAT, "model": "nope"},
                         headers={"x-request-id": "route-404"}).status_code == 404
    auditor, reads = keys["auditor"]["key"], 0

    def read(key: str | None = None, **params: str) -> httpx.Response:
        nonlocal reads
        response = call("GET", "/audit", key, params=params)
        reads += response.status_code == 200
        return response

    mine = read(auditor, key_id=client["id"], tenant=tenant["id"])
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["object"] == "list" and body["has_more"] is False
    assert [r["request_id"] for r in body["data"]] == ["route-ok", "route-404"]
    served = read(auditor, key_id=client["id"], model="gemma-3-270m", since="2000-01-01",
                  until=str(time.time() + 3600), action="allow", sensitivity="public",
                  type="request").json()["data"]
    assert [r["request_id"] for r in served] == ["route-ok"]
    assert read(auditor, key_id=client["id"], since=str(time.time() + 3600)).json()["data"] == []
    page = read(limit="1").json()
    assert len(page["data"]) == 1 and page["has_more"] is True
    assert page["data"][0]["kind"] == "start"  # oldest first

    export = read(format="jsonl", key_id=client["id"])
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [r["request_id"] for r in lines] == ["route-ok", "route-404"]
    assert lines[0]["seq"] < lines[1]["seq"]

    for role in ("operator", "client"):
        refused = read(keys[role]["key"])
        assert refused.status_code == 403, role
        assert refused.json()["error"]["code"] == "permission_denied"
    assert read("sk-not-a-key").status_code == 401
    for params, param in (({"limit": "5000"}, "limit"), ({"limit": "x"}, "limit"),
                          ({"since": "yesterday"}, "since"), ({"until": "inf"}, "until"),
                          ({"sensitivity": "secret"}, "sensitivity"), ({"type": "x"}, "type"),
                          ({"format": "csv"}, "format"), ({"tenant_id": "t"}, "tenant_id")):
        bad = read(**params)
        assert bad.status_code == 400, params
        assert bad.json()["error"]["param"] == param
        assert bad.json()["error"]["type"] == "invalid_request_error"

    events = read(type="admin").json()["data"]
    audit_reads = [e for e in events if e["kind"] == "audit_read"]
    assert len(audit_reads) == reads - 1  # every successful read but this one, no refusal
    auditor_id = keys["auditor"]["id"]
    assert [e["actor"] for e in audit_reads[:3]] == [auditor_id] * 3
    assert audit_reads[0]["detail"] == {"key_id": client["id"], "tenant": tenant["id"],
                                        "returned": "2"}
    assert audit_reads[4]["detail"] == {"format": "jsonl", "key_id": client["id"]}
    assert audit_reads[4]["actor"] not in (auditor_id, client["id"])  # the admin key
    assert proc.stop() == 0
    verified = run_cli("audit", "verify", data_dir=data)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_running_daemon_purges_segments_past_retention(
        tmp_path: Path, fresh_server: list[ServerProcess]) -> None:
    data = make_data_dir(tmp_path)
    small = AuditConfig(segment_max_bytes=4096)
    log = AuditLog(data, small)  # a log written ten days ago
    log.start()
    old = time.time() - 10 * 86400
    for future in [log.submit(RequestRecord(request_id=f"old-{i}", time=old))
                   for i in range(100)]:
        future.result()
    log.close()
    segments = list_segments(data / "audit")
    assert len(segments) >= 3
    proc = ServerProcess(data, "[audit]\nretention_days = 1\nsegment_max_bytes = 4096\n")
    fresh_server.append(proc.start())
    assert list_segments(data / "audit") == segments[-1:]  # the current one stays
    with proc.client() as http:
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert proc.stop() == 0
    verified = run_cli("audit", "verify", data_dir=data)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    purged = [r for r in audit_records(data) if r.get("kind") == "purged"]
    assert purged and purged[0]["detail"]["segments"] == str(len(segments) - 1)  # type: ignore[index]


def test_a_changed_configuration_is_recorded_once(tmp_path: Path,
                                                  fresh_server: list[ServerProcess]) -> None:
    data = make_data_dir(tmp_path)
    for config in ('[local]\nembedding_model = ""\n',) * 2 + (
            '[local]\nembedding_model = ""\n[server]\nshutdown_grace_seconds = 5\n',):
        proc = ServerProcess(data, config).start()
        fresh_server.append(proc)
        assert proc.stop() == 0
    loaded = [r for r in audit_records(data) if r.get("kind") == "config_changed"
              and r.get("detail", {}).get("change") == "configuration loaded"]
    assert len(loaded) == 2  # the first start, and the start with a different config
    assert loaded[1]["detail"]["previous_sha256"] == loaded[0]["detail"]["sha256"]
