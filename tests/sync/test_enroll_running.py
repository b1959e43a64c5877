"""Enrolling a box whose daemon is already running: ``POST /admin/v1/sync/now`` (what
``appliance enroll`` calls on the daemon it finds, and ``appliance sync now``) starts the sync
agent without a restart; before enrollment the same route says the box is not enrolled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, make_data_dir, run_cli
from tests.sync.central_support import (CentralProcess, central_server,
                                        create_enrollment_token, publish_policy)


@pytest.fixture()
def central(tmp_path: Path) -> Iterator[CentralProcess]:
    with central_server(tmp_path / "central") as process:
        yield process


def test_a_running_daemon_starts_syncing_once_enrolled(tmp_path: Path,
                                                       central: CentralProcess) -> None:
    publish_policy(central.data_dir, "version = 5\ndescription = 'from central'\n")
    box = ServerProcess(make_data_dir(tmp_path / "box"),
                        "[local]\nembedding_model = \"\"\n[sync]\npolicy_interval_seconds = 0.5\n"
                        "heartbeat_interval_seconds = 0.5\n").start()
    try:
        with box.client() as http:
            before = http.post("/admin/v1/sync/now")
            assert before.status_code == 409
            assert before.json()["error"]["code"] == "not_enrolled"

            token = create_enrollment_token(central.data_dir, "line-3")
            enrolled = run_cli("enroll", central.url, token, data_dir=box.data_dir)
            assert enrolled.returncode == 0, enrolled.stderr

            now = http.post("/admin/v1/sync/now")
            assert now.status_code == 200, now.text
            assert now.json()["ok"] is True, now.json()
            assert http.get("/admin/v1/sync").json()["agent_running"] is True
            # The policy central published is in force without a restart.
            deadline = time.monotonic() + 30
            while http.get("/admin/v1/policy").json()["version"] != 5:
                assert time.monotonic() < deadline, "the synced policy never applied"
                time.sleep(0.2)
        with central.admin_client() as admin:
            boxes = admin.get("/v1/fleet").json()["boxes"]
        assert [b["name"] for b in boxes] == ["line-3"]
        assert boxes[0]["policy_version"] == 5
    finally:
        box.stop()
