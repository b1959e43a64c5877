"""Enrollment and the sync agent against a real central process: the CLI enrolls over HTTP,
the agent (in this process, on a real ``state.db`` and audit log) pulls and applies signed
policies, pushes usage and checkpoints that central's totals and fleet view then show, replays
an unacknowledged batch without double counting, and backs off when central is away."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from appliance.audit import AuditLog, admin_event
from appliance.audit.config import AuditConfig
from appliance.audit.crypto import SIGNING_KEY_NAME, load_signing_key
from appliance.datadir import DataDir
from appliance.limits.ledger import UsageLedger
from appliance.policy import LEVELS, PolicyConfig, PolicyError, PolicyHolder
from appliance.state import StateDB
from sync.agent import SyncAgent, build_agent
from sync.client import CentralClient
from sync.config import SyncConfig
from sync.enrollment import load_box_key, load_enrollment
from sync.outbox import Outbox, last_checkpoint
from sync.paths import SyncPaths
from sync.policy_store import judge, store_last_known_good
from sync.status import read_status
from tests.conftest import run_cli
from tests.sync.central_support import (CentralProcess, central_server, create_enrollment_token,
                                        publish_policy)
from tests.sync.test_outbox import usage_row

CONFIG = SyncConfig(backoff_initial_seconds=0.5, backoff_max_seconds=4, timeout_seconds=5)


class Host:
    """The part of the daemon's Runtime the agent uses, recording what it was asked."""

    def __init__(self, served: tuple[str, ...] = ()) -> None:
        self.policies = PolicyHolder(PolicyConfig())
        self.served = served
        self.applied: list[tuple[int, str]] = []
        self.events: list[tuple[str, dict[str, str]]] = []

    def check_policy(self, policy: PolicyConfig) -> None:
        for level in LEVELS:
            model = getattr(policy.fallback_model, level)
            if model is not None and model not in self.served:
                raise PolicyError(f"field `fallback_model.{level}`: no provider serves "
                                  f"the model '{model}'")

    def apply_policy(self, policy: PolicyConfig, source: str) -> None:
        self.policies.swap(policy, source)
        self.applied.append((policy.version, source))

    async def record_admin_event(self, kind: str, actor: str, **detail: str) -> None:
        self.events.append((kind, detail))


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralProcess]:
    with central_server(tmp_path_factory.mktemp("central") / "data") as proc:
        yield proc


def enroll_box(central: CentralProcess, root: Path, name: str = "box") -> Path:
    data = root / name
    token = create_enrollment_token(central.data_dir, name)
    result = run_cli("enroll", central.url, token, "--name", name, data_dir=data)
    assert result.returncode == 0, result.stderr
    return data


def agent_for(host: Host, data: Path, config: SyncConfig = CONFIG) -> SyncAgent:
    agent = build_agent(host, data, config, model="gemma-3-270m", version="test")
    assert agent is not None
    return agent


def totals(central: CentralProcess, box_id: str) -> list[dict[str, Any]]:
    with central.admin_client() as client:
        body = client.get("/v1/usage/totals", params={"group_by": "box,department,model"}).json()
    return [row for row in body["totals"] if row["box"] == box_id]


def fleet_entry(central: CentralProcess, box_id: str) -> dict[str, Any]:
    with central.admin_client() as client:
        boxes = client.get("/v1/fleet").json()["boxes"]
    entry: dict[str, Any] = next(b for b in boxes if b["box_id"] == box_id)
    return entry


def test_enroll_stores_key_and_trust_root_and_queues_the_event(
        central: CentralProcess, tmp_path: Path) -> None:
    data = enroll_box(central, tmp_path)
    paths = SyncPaths(data)
    assert stat.S_IMODE(paths.key_file.stat().st_mode) == 0o600
    load_box_key(data)
    assert json.loads((paths.metadata_dir / "root.json").read_bytes())["signed"]["_type"] == "root"
    enrollment = load_enrollment(data)
    assert enrollment is not None and enrollment.box_id.startswith("box_")
    assert enrollment.central_url == central.url
    db = StateDB(data / "state.db")
    events = db.conn.execute("SELECT kind, actor, detail FROM audit_outbox").fetchall()
    db.close()
    assert [(k, a) for k, a, _ in events] == [("enrolled", "cli")]
    assert json.loads(events[0][2])["box_id"] == enrollment.box_id
    status = run_cli("sync", "status", "--json", data_dir=data)
    assert status.returncode == 0 and json.loads(status.stdout)["box_id"] == enrollment.box_id
    again = run_cli("enroll", central.url, create_enrollment_token(central.data_dir, "x"),
                    data_dir=data)
    assert again.returncode == 1 and "already enrolled" in again.stderr
    # The audit log's signing key, made as the audit writer would make it, went to central.
    signer = load_signing_key(DataDir(data), create=False)
    assert stat.S_IMODE((data / "secrets" / SIGNING_KEY_NAME).stat().st_mode) == 0o600
    entry = fleet_entry(central, enrollment.box_id)
    assert (entry["audit_key_id"], entry["audit_status"]) == (signer.key_id, "verified")


def test_a_token_enrolls_one_box_only(central: CentralProcess, tmp_path: Path) -> None:
    token = create_enrollment_token(central.data_dir, "once")
    first = run_cli("enroll", central.url, token, data_dir=tmp_path / "a")
    assert first.returncode == 0, first.stderr
    replay = run_cli("enroll", central.url, token, data_dir=tmp_path / "b")
    assert replay.returncode == 1 and "enrollment_token_used" in replay.stderr
    unknown = run_cli("enroll", central.url, "apt_enr_nope", data_dir=tmp_path / "c")
    assert unknown.returncode == 1 and "enrollment_token_invalid" in unknown.stderr
    assert load_enrollment(tmp_path / "b") is None and load_enrollment(tmp_path / "c") is None
    standalone = run_cli("sync", "status", data_dir=tmp_path / "b")
    assert standalone.returncode == 0 and "not enrolled" in standalone.stdout


def test_a_standalone_or_disabled_box_has_no_agent(central: CentralProcess,
                                                   tmp_path: Path) -> None:
    assert build_agent(Host(), tmp_path, CONFIG) is None
    data = enroll_box(central, tmp_path)
    assert build_agent(Host(), data, SyncConfig(enabled=False)) is None


def test_judge_refuses_rollback_and_mismatch_and_accepts_the_same_file(tmp_path: Path) -> None:
    assert judge(tmp_path, 3, b"version = 3\n").status == "applied"
    store_last_known_good(tmp_path, b"version = 3\n")
    assert judge(tmp_path, 3, b"version = 3\n").status == "current"
    older = judge(tmp_path, 2, b"version = 2\n")
    assert (older.status, older.reason) == ("rejected", "rollback")
    same = judge(tmp_path, 3, b"version = 3\ndescription = 'other'\n")
    assert (same.status, same.reason) == ("rejected", "rollback")
    mismatch = judge(tmp_path, 4, b"version = 5\n")
    assert (mismatch.status, mismatch.reason) == ("rejected", "invalid")
    broken = judge(tmp_path, 4, b"version = 4\n[allowed_zones]\nsecret = ['cloud']\n")
    assert (broken.status, broken.reason) == ("rejected", "invalid")
    assert "allowed_zones.secret" in broken.detail


def test_policy_is_pulled_applied_and_kept(central: CentralProcess, tmp_path: Path) -> None:
    data = enroll_box(central, tmp_path)
    host = Host(served=("site-llama",))
    agent = agent_for(host, data)

    async def scenario() -> None:
        current = publish_policy(central.data_dir, "version = 0\n")["version"]
        assert await agent.run_job("policy") is None
        assert host.applied[-1][0] == current
        applied = len(host.applied)
        assert await agent.run_job("policy") is None  # nothing new: not applied again
        assert len(host.applied) == applied
        newer = (f"version = {current + 1}\n[allowed_zones]\ninternal = ['device', 'site']\n"
                 "[fallback_model]\ninternal = 'site-llama'\n")
        publish_policy(central.data_dir, newer)
        assert await agent.run_job("policy") is None
        assert host.applied[-1] == (current + 1, f"central (policy version {current + 1})")
        assert host.policies.policy.allowed_zones.internal == ("device", "site")
        assert SyncPaths(data).policy_file.read_text() == newer
        # A policy naming a model this box does not serve is refused, and audited once.
        publish_policy(central.data_dir, f"version = {current + 2}\n[fallback_model]\n"
                                         "internal = 'nowhere'\n")
        assert await agent.run_job("policy") is None
        assert await agent.run_job("policy") is None
        assert host.policies.version == current + 1
        assert [k for k, _ in host.events] == ["policy_rejected"]
        assert host.events[0][1]["reason"] == "invalid"
        assert host.events[0][1]["offered_version"] == str(current + 2)
        status = read_status(data)
        assert status["policy"]["status"] == "rejected"
        assert "last known-good policy (version" in status["policy"]["detail"]
        assert status["policy"]["version"] == current + 1
        assert await agent.run_job("heartbeat") is None
        await agent.stop()

    asyncio.run(scenario())
    entry = fleet_entry(central, load_enrollment(data).box_id)  # type: ignore[union-attr]
    assert entry["policy_version"] == host.policies.version
    assert entry["policy_status"].startswith("rejected: ")
    assert entry["model"] == "gemma-3-270m" and entry["appliance_version"] == "test"


def test_usage_and_checkpoints_reach_central_once(central: CentralProcess,
                                                  tmp_path: Path) -> None:
    data = enroll_box(central, tmp_path)
    box_id = load_enrollment(data).box_id  # type: ignore[union-attr]
    # As if enrolled before boxes sent their audit key: the heartbeat brings it.
    db = sqlite3.connect(central.data_dir / "state.db", isolation_level=None)
    db.execute("UPDATE boxes SET audit_public_key = NULL WHERE id = ?", (box_id,))
    db.close()
    assert fleet_entry(central, box_id)["audit_status"] == "unverified"
    ledger = UsageLedger(data / "state.db", enqueue_for_sync=True)
    ledger.start()
    rows = [usage_row(i, department=f"d_{i % 3}") for i in range(25)]
    for row in rows:
        ledger.record(row)
    ledger.close()
    log = AuditLog(data, AuditConfig(checkpoint_every_records=2))
    log.start()
    for i in range(6):
        log.submit(admin_event("config_changed", change=f"test {i}")).result()
    log.close()
    # A batch sent whose acknowledgement never arrived (the box was killed): central has it.
    outbox = Outbox(data / "state.db", data / "audit")
    first = outbox.usage_batch(CONFIG.batch_size)
    outbox.close()
    assert first is not None and first.count == 25
    enrollment = load_enrollment(data)
    assert enrollment is not None

    async def scenario() -> None:
        client = CentralClient(central.url, box_id, load_box_key(data), 5)
        assert (await client.post("/v1/usage", first.body))["duplicate"] is False
        await client.close()
        agent = agent_for(Host(), data)
        assert await agent.run_job("usage") is None  # the replay: acknowledged, not recounted
        assert await agent.run_job("checkpoints") is None
        assert fleet_entry(central, box_id)["audit_status"] == "unverified"  # no key yet
        assert await agent.run_job("heartbeat") is None
        await agent.stop()

    asyncio.run(scenario())
    # The checkpoints received before the key were verified when the heartbeat brought it.
    entry = fleet_entry(central, box_id)
    assert entry["audit_key_id"] == load_signing_key(DataDir(data), create=False).key_id
    assert entry["audit_status"] == "verified"
    by_department: dict[str, int] = {}
    for row in rows:
        assert row.department_id is not None
        by_department[row.department_id] = by_department.get(row.department_id, 0) + 1
    got = {t["department"]: (t["requests"], t["prompt_tokens"]) for t in totals(central, box_id)}
    assert got == {d: (n, sum(r.prompt_tokens for r in rows if r.department_id == d))
                   for d, n in by_department.items()}
    head = fleet_entry(central, box_id)["audit_head"]
    mine = last_checkpoint(data / "audit")
    assert mine is not None and head["source"] == "checkpoint"
    assert (head["index"], head["seq"], head["head"]) == (mine["index"], mine["seq"],
                                                         mine["head"])
    status = read_status(data)
    assert status["outbox"] == {"usage_rows": 0, "usage_rows_in_flight": 0, "checkpoints": 0}
    assert status["last_error"] is None and status["last_contact"] is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_an_unreachable_central_is_retried_with_backoff(central: CentralProcess,
                                                        tmp_path: Path) -> None:
    data = enroll_box(central, tmp_path)
    path = SyncPaths(data).enrollment_file
    enrollment = msgspec.json.decode(path.read_bytes())
    enrollment["central_url"] = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    path.write_bytes(msgspec.json.encode(enrollment))
    agent = agent_for(Host(), data, msgspec.structs.replace(
        CONFIG, backoff_initial_seconds=30, backoff_max_seconds=120))

    async def scenario() -> list[dict[str, Any]]:
        await agent.start()  # every job runs at once, and fails
        while read_status(data)["jobs"]["heartbeat"]["failures"] < 1:
            await asyncio.sleep(0.05)
        first = read_status(data)["jobs"]["heartbeat"]
        error = await agent.run_job("heartbeat")  # a second failure in a row (``sync now``)
        assert error is not None and "cannot be reached" in error
        second = read_status(data)["jobs"]["heartbeat"]
        await agent.stop()
        return [first, second]

    first, second = asyncio.run(scenario())
    assert first["failures"] == 1 and second["failures"] == 2
    # Equal jitter: between half and all of 30 s, then of 60 s (instead of the interval).
    delays = [job["next_attempt"] - job["last_error_at"] for job in (first, second)]
    assert 15 - 1 <= delays[0] <= 30 + 1 and 30 - 1 <= delays[1] <= 60 + 1, delays
    status = read_status(data)
    assert "cannot be reached" in status["last_error"]
    text = run_cli("sync", "status", data_dir=data).stdout
    assert "last error:" in text and "cannot be reached" in text


@pytest.mark.parametrize(("text", "message"), [
    ("[sync]\npolicy_interval_seconds = 0", "key `sync.policy_interval_seconds`"),
    ("[sync]\nbatch_size = 0", "key `sync.batch_size`"),
    ("[sync]\nbackoff_initial_seconds = 10\nbackoff_max_seconds = 5", "backoff_max_seconds"),
    ("[sync]\nbatch_size = 100\noutbox_max_rows = 150", "outbox_max_rows"),
    ("[sync]\nretries = 3", "unknown key `sync.retries`"),
])
def test_sync_config_is_validated(text: str, message: str) -> None:
    from appliance.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=message.replace("`", ".")):
        parse_config(text)
