"""The box and central as real processes on loopback: an enrolled ``appliance serve`` (local
model plus the mock upstream as site and cloud providers) and ``appliance central serve``.

In file order, on one central and one box: usage and checkpoints survive a central outage and
arrive exactly once; a new policy reaches the box and changes its routing; tampered, badly
signed, rolled-back and expired metadata are refused while the box keeps serving under its
last good policy; a SIGKILLed box loses nothing that was queued and counts nothing twice.
Each test waits for what it expects with a deadline; none asserts a timing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from securesystemslib.signer._crypto_signer import CryptoSigner
from tuf.api.metadata import Metadata

from appliance.audit.crypto import load_signing_key
from appliance.datadir import DataDir
from sync.outbox import last_checkpoint
from tests.conftest import ServerProcess, make_data_dir, run_cli
from tests.mock_upstream import ENV, KEY, mock_upstream, providers_toml
from tests.sync.central_support import (CentralProcess, create_enrollment_token,
                                        publish_policy, write_config)

T = TypeVar("T")

#: Appended to ``providers_toml(url)``.
BOX_CONFIG = """
[limits_policy]
ledger_batch_interval_ms = 200
[audit]
checkpoint_every_seconds = 0.5
[sync]
policy_interval_seconds = 0.5
usage_interval_seconds = 0.5
checkpoint_interval_seconds = 0.5
heartbeat_interval_seconds = 1
backoff_initial_seconds = 0.2
backoff_max_seconds = 1
timeout_seconds = 5
"""
#: The server never re-signs on its own here, so what the tests put on its disk is served.
CENTRAL_CONFIG = "[tuf]\nauto_refresh_timestamp = false\n"
EXPIRING_CONFIG = "[tuf]\nauto_refresh_timestamp = false\ntimestamp_expiry_seconds = 1\n"
RESTRICT_INTERNAL = """[allowed_zones]
internal = ["device", "site"]
[on_forbidden]
internal = "reroute"
[fallback_model]
internal = "site-llama"
"""
WORDS = ["Name three primary colours.", "Count to five in German.",
         "What is the boiling point of water at sea level?"]


@dataclass
class Fleet:
    central: CentralProcess
    box: ServerProcess
    config_text: str
    token: str
    repo_v1: Path
    keys: dict[str, str] = field(default_factory=dict)

    def restart_box(self, sig: int = signal.SIGTERM) -> None:
        self.box.stop(sig)
        self.box = ServerProcess(self.box.data_dir, self.config_text,
                                 env=ENV).start()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, AssertionError, KeyError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with mock_upstream(KEY) as url:
        yield url


@pytest.fixture(scope="module")
def fleet(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    config = write_config(root / "central", CENTRAL_CONFIG)
    # A fixed port: the box keeps the URL it enrolled with across central's restarts.
    central = CentralProcess(root / "central", config, free_port()).start()
    publish_policy(central.data_dir, "version = 1\ndescription = 'baseline'\n")
    repo_v1 = root / "repo-v1"
    shutil.copytree(central.repository, repo_v1)
    data = make_data_dir(root / "box")
    token = create_enrollment_token(central.data_dir, "plant-1")
    enrolled = run_cli("enroll", central.url, token, "--name", "plant-1", data_dir=data)
    assert enrolled.returncode == 0, enrolled.stderr
    config_text = providers_toml(upstream) + BOX_CONFIG
    box = ServerProcess(data, config_text, env=ENV).start()
    fleet = Fleet(central, box, config_text, token, repo_v1)
    with box.client() as admin:
        tenant = admin.post("/admin/v1/tenants", json={"name": "Plant"}).json()
        for name in ("Radiology", "Billing"):
            dept = admin.post("/admin/v1/departments",
                              json={"name": name, "tenant_id": tenant["id"]}).json()
            app = admin.post("/admin/v1/apps",
                             json={"name": name.lower(), "department_id": dept["id"]}).json()
            fleet.keys[dept["id"]] = admin.post(
                "/admin/v1/keys", json={"name": name, "app_id": app["id"]}).json()["key"]
    try:
        yield fleet
    finally:
        fleet.box.stop(signal.SIGKILL)
        fleet.central.stop()
        # For a failure's post-mortem (the processes' output ends with the test).
        (root / "box.log").write_text(fleet.box.output)
        (root / "central.log").write_text(fleet.central.output)


def chat(fleet: Fleet, key: str, model: str, text: str,
         classification: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    if classification:
        headers["x-data-classification"] = classification
    return httpx.post(fleet.box.url + "/v1/chat/completions", headers=headers, timeout=60,
                      json={"model": model, "max_tokens": 3,
                            "messages": [{"role": "user", "content": text}]})


def serve_requests(fleet: Fleet, rounds: int = 1) -> None:
    for n in range(rounds):
        for i, key in enumerate(fleet.keys.values()):
            for model in ("gpt-4o-mini", "site-llama"):
                response = chat(fleet, key, model, WORDS[(n + i) % len(WORDS)])
                assert response.status_code == 200, response.text


def box_status(fleet: Fleet) -> dict[str, Any]:
    with fleet.box.client() as admin:
        status: dict[str, Any] = admin.get("/admin/v1/sync").json()
    return status


Totals = dict[tuple[str, str], tuple[int, int, int, int]]


def box_totals(fleet: Fleet) -> Totals:
    with fleet.box.client() as admin:
        rows = admin.get("/admin/v1/usage", params={"group_by": "department,model"}).json()
    return {(r["department"], r["model"]): (r["requests"], r["prompt_tokens"],
                                            r["completion_tokens"], r["cost_micros"])
            for r in rows["data"] if r["department"] is not None}


def central_totals(fleet: Fleet) -> Totals:
    box_id = box_status(fleet)["box_id"]
    with fleet.central.admin_client() as admin:
        body = admin.get("/v1/usage/totals", params={"group_by": "box,department,model"}).json()
    return {(r["department"], r["model"]): (r["requests"], r["prompt_tokens"],
                                            r["completion_tokens"], r["cost_micros"])
            for r in body["totals"] if r["box"] == box_id and r["department"] is not None}


def central_entry(fleet: Fleet) -> dict[str, Any]:
    """The box's row in central's fleet view."""
    box_id = box_status(fleet)["box_id"]
    with fleet.central.admin_client() as admin:
        boxes = admin.get("/v1/fleet").json()["boxes"]
    entry: dict[str, Any] = next(b for b in boxes if b["box_id"] == box_id)
    return entry


def central_head(fleet: Fleet) -> dict[str, Any] | None:
    head: dict[str, Any] | None = central_entry(fleet)["audit_head"]
    return head


def audit_key_id(fleet: Fleet) -> str:
    """The id of the key the box's audit log signs its checkpoints with."""
    return load_signing_key(DataDir(fleet.box.data_dir), create=False).key_id


def synced(fleet: Fleet) -> bool | None:
    """Central has every usage row and the box's last checkpoint; nothing is queued."""
    status = box_status(fleet)
    if status["outbox"]["usage_rows"] or status["outbox"]["checkpoints"]:
        return None
    expected = box_totals(fleet)
    if not expected or central_totals(fleet) != expected:
        return None
    entry, mine = central_entry(fleet), last_checkpoint(fleet.box.data_dir / "audit")
    head = entry["audit_head"]
    if head is None or mine is None or (head["index"], head["seq"], head["head"]) != (
            mine["index"], mine["seq"], mine["head"]):
        return None
    # Every checkpoint central holds was verified with the key the box's audit log uses.
    assert (entry["audit_status"], entry["audit_key_id"]) == ("verified", audit_key_id(fleet))
    return True


@pytest.mark.slow
def test_usage_and_checkpoints_survive_a_central_outage(fleet: Fleet) -> None:
    serve_requests(fleet)
    wait_for("the first requests at central", lambda: synced(fleet))
    fleet.central.stop(signal.SIGKILL)
    serve_requests(fleet, rounds=2)  # the box serves on without central
    status = wait_for("the outage in the status", lambda: (
        s := box_status(fleet))["last_error"] and "cannot be reached" in s["last_error"]
        and s["outbox"]["usage_rows"] > 0 and s)
    assert status["policy"]["version"] == 1
    text = run_cli("sync", "status", data_dir=fleet.box.data_dir)
    assert text.returncode == 0 and "cannot be reached" in text.stdout
    now = run_cli("sync", "now", "--url", fleet.box.url, data_dir=fleet.box.data_dir)
    assert now.returncode == 1 and "usage: failed: central cannot be reached" in now.stdout
    fleet.central.start()
    assert wait_for("central to catch up exactly", lambda: synced(fleet), timeout=60)
    totals = box_totals(fleet)
    assert sum(requests for requests, *_ in totals.values()) == 12
    assert len(totals) == 4  # two departments x two models
    assert central_totals(fleet) == totals


def test_a_new_policy_reaches_the_box_and_changes_routing(fleet: Fleet) -> None:
    key = next(iter(fleet.keys.values()))
    before = chat(fleet, key, "gpt-4o-mini", WORDS[0], classification="internal")
    assert before.headers["x-appliance-route"] == "openai/gpt-4o-mini"
    version = box_status(fleet)["policy"]["version"] + 1
    publish_policy(fleet.central.data_dir, f"version = {version}\n{RESTRICT_INTERNAL}")
    wait_for("the box to apply the new policy", lambda: box_status(fleet)["policy"]["version"]
             == version or None)
    after = chat(fleet, key, "gpt-4o-mini", WORDS[0], classification="internal")
    assert after.status_code == 200, after.text
    assert after.headers["x-appliance-route"] == "vllm/site-llama"
    public = chat(fleet, key, "gpt-4o-mini", WORDS[0])
    assert public.headers["x-appliance-route"] == "openai/gpt-4o-mini"
    status = box_status(fleet)
    assert status["policy"]["status"] == "applied" and status["policy"]["detail"] is None
    now = run_cli("sync", "now", "--json", "--url", fleet.box.url, data_dir=fleet.box.data_dir)
    assert now.returncode == 0, now.stderr
    assert json.loads(now.stdout)["errors"] == dict.fromkeys(
        ("policy", "usage", "checkpoints", "heartbeat"))
    with fleet.central.admin_client() as admin:
        entry = next(b for b in admin.get("/v1/fleet").json()["boxes"]
                     if b["box_id"] == status["box_id"])
    assert (entry["policy_version"], entry["policy_status"]) == (version, "applied")
    assert entry["model"] == "gemma-3-270m" and entry["hardware"]["profile"]["name"]
    # The key came with the enrollment (made by `appliance enroll` before the daemon's first
    # start); the checkpoints the box signed with it since verify at central.
    assert entry["audit_key_id"] == audit_key_id(fleet)
    verified = wait_for("central to hold verified checkpoints", lambda: (
        e := central_entry(fleet))["audit_head"] and e["audit_head"]["source"] == "checkpoint"
        and e)
    assert verified["audit_status"] == "verified", verified["audit_status"]
    # The sync routes are for the appliance's own admin keys, not for clients.
    denied = httpx.post(fleet.box.url + "/admin/v1/sync/now",
                        headers={"authorization": f"Bearer {key}"})
    assert denied.status_code == 403


def still_serving_under(fleet: Fleet, version: int) -> None:
    key = next(iter(fleet.keys.values()))
    response = chat(fleet, key, "gpt-4o-mini", WORDS[1], classification="internal")
    assert response.status_code == 200, response.text
    assert response.headers["x-appliance-route"] == "vllm/site-llama"
    assert box_status(fleet)["policy"]["version"] == version


def refused(fleet: Fleet, reason: str, status: str = "rejected") -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        policy: dict[str, Any] = box_status(fleet)["policy"]
        return policy if (policy["status"], policy["reason"]) == (status, reason) else None
    return wait_for(f"the box to refuse ({reason})", check)


def swap_repository(fleet: Fleet, source: Path, change: Callable[[], None] = lambda: None
                    ) -> None:
    """Stop central, put ``source`` in place as its repository, ``change`` it, start it."""
    fleet.central.stop()
    shutil.rmtree(fleet.central.repository)
    shutil.copytree(source, fleet.central.repository)
    change()
    fleet.central.start()


def resign_timestamp(fleet: Fleet, sign: Callable[[Metadata[Any]], None]) -> None:
    path = fleet.central.repository / "metadata" / "timestamp.json"
    metadata: Metadata[Any] = Metadata.from_file(str(path))
    metadata.signed.version += 1
    sign(metadata)
    path.write_bytes(metadata.to_bytes())


def wrong_key(metadata: Metadata[Any]) -> None:
    """Validly signed, by a key central's root does not name."""
    metadata.signatures.clear()
    metadata.sign(CryptoSigner.generate_ed25519())


def test_bad_metadata_is_refused_while_the_box_keeps_its_policy(fleet: Fleet,
                                                                tmp_path: Path) -> None:
    version = box_status(fleet)["policy"]["version"] + 1
    publish_policy(fleet.central.data_dir, f"version = {version}\n{RESTRICT_INTERNAL}")
    wait_for("a restricting policy", lambda: box_status(fleet)["policy"]["version"] == version
             or None)
    good = tmp_path / "good"
    shutil.copytree(fleet.central.repository, good)

    # None of these moves what the box trusts forward, so each starts from the good state.
    swap_repository(fleet, good, lambda: resign_timestamp(fleet, lambda md: None))
    assert "bad signature" in refused(fleet, "signature")["detail"]  # a byte changed
    still_serving_under(fleet, version)
    swap_repository(fleet, good, lambda: resign_timestamp(fleet, wrong_key))
    refused(fleet, "signature")
    still_serving_under(fleet, version)
    swap_repository(fleet, fleet.repo_v1)  # what central served before: older, validly signed
    assert "rollback" in refused(fleet, "rollback")["detail"]
    still_serving_under(fleet, version)

    # A target changed on central's disk after it was signed.
    offered = version + 1
    text = f"version = {offered}\n{RESTRICT_INTERNAL}".encode()
    target = fleet.central.repository / "targets" / f"{hashlib.sha256(text).hexdigest()}.policy.toml"

    def publish_and_tamper() -> None:
        publish_policy(fleet.central.data_dir, text.decode())
        target.write_bytes(text.replace(b"site", b"SITE"))
    swap_repository(fleet, good, publish_and_tamper)
    assert "tampered" in refused(fleet, "tampered")["detail"]
    still_serving_under(fleet, version)
    target.write_bytes(text)  # repaired: the same signed policy now arrives intact
    wait_for("the repaired policy", lambda: box_status(fleet)["policy"]["version"] == offered
             or None)
    still_serving_under(fleet, offered)

    # Metadata that expired (a freeze): refused, and the box says it is frozen.
    expiring = write_config(tmp_path / "expiring", EXPIRING_CONFIG)
    fleet.central.stop()
    publish_policy(fleet.central.data_dir, f"version = {offered + 1}\n", config=expiring)
    time.sleep(1.5)  # past the timestamp's one-second lifetime
    fleet.central.start()
    frozen = refused(fleet, "expired", status="frozen")
    assert f"last known-good policy (version {offered})" in frozen["detail"]
    still_serving_under(fleet, offered)
    with fleet.central.admin_client() as admin:
        entry = wait_for("the freeze at central", lambda: next(
            (b for b in admin.get("/v1/fleet").json()["boxes"]
             if b["policy_status"].startswith("frozen")), None))
    assert entry["policy_version"] == offered

    replay = run_cli("enroll", fleet.central.url, fleet.token, data_dir=tmp_path / "other")
    assert replay.returncode == 1 and "enrollment_token_used" in replay.stderr

    # A good policy is taken again afterwards; every refusal is in the box's audit log.
    publish_policy(fleet.central.data_dir, f"version = {offered + 2}\n{RESTRICT_INTERNAL}")
    wait_for("the box to recover", lambda: (p := box_status(fleet)["policy"])["version"]
             == offered + 2 and p["status"] == "applied" or None)
    search = run_cli("audit", "search", "--json", "--type", "admin", "--limit", "1000",
                     data_dir=fleet.box.data_dir)
    assert search.returncode == 0, search.stderr
    events = [json.loads(line) for line in search.stdout.splitlines() if line.strip()]
    reasons = [e["detail"]["reason"] for e in events if e["kind"] == "policy_rejected"]
    assert {"tampered", "signature", "rollback", "expired"} <= set(reasons)
    assert any(e["kind"] == "enrolled" for e in events)


@pytest.mark.slow
def test_a_killed_box_loses_nothing_and_counts_nothing_twice(fleet: Fleet) -> None:
    serve_requests(fleet)
    wait_for("a synced start", lambda: synced(fleet))
    # Queued but never acknowledged: central is down while the box serves, then the box dies.
    fleet.central.stop(signal.SIGKILL)
    serve_requests(fleet)
    wait_for("rows in the outbox", lambda: box_status(fleet)["outbox"]["usage_rows"] or None)
    time.sleep(0.5)  # past one ledger batch interval: the rows are committed
    version = box_status(fleet)["policy"]["version"]
    fleet.restart_box(signal.SIGKILL)
    # Central is still down: the policy in force is the last known-good one, loaded at start.
    with fleet.box.client() as admin:
        policy = admin.get("/admin/v1/policy").json()
    assert policy["version"] == version and policy["source"].startswith(
        "central (last known-good"), policy
    fleet.central.start()
    assert wait_for("central to catch up after the kill", lambda: synced(fleet), timeout=60)
    # Killed in the middle of traffic while batches are in flight, several times.
    for _ in range(3):
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                try:
                    serve_requests(fleet)
                except (httpx.HTTPError, AssertionError):
                    return  # the box died under us
        served = sum(requests for requests, *_ in box_totals(fleet).values())
        worker = threading.Thread(target=traffic)
        worker.start()
        wait_for("traffic being recorded and sent", lambda: sum(
            requests for requests, *_ in box_totals(fleet).values()) >= served + 8 or None)
        fleet.box.stop(signal.SIGKILL)  # wherever its batches are: queued, sent, acknowledged
        stop.set()
        worker.join()
        fleet.restart_box()
    assert wait_for("central to agree after the kills", lambda: synced(fleet), timeout=60)
    assert central_totals(fleet) == box_totals(fleet)
