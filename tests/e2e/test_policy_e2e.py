"""A policy file with overrides, through the real server and the mock cloud upstream: a
department may not send even public data to the cloud, a tenant's default classification
raises its requests' level, everyone else reaches the cloud; the admin route shows the policy
in force and what it resolves to for a key; a broken policy file stops the start naming the
field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ServerProcess, make_data_dir
from tests.mock_upstream import ENV, KEY, mock_upstream

PUBLIC = [{"role": "user", "content": "Name three primary colours."}]

POLICY = """
version = 3
description = "e2e"
[[overrides]]
department = "Radiology"
allowed_zones.public = ["device", "site"]
allowed_zones.internal = ["device", "site"]

[[overrides]]
tenant = "Plant"
classification = "confidential"
on_forbidden.confidential = "reroute"
fallback_model.confidential = "gemma-3-270m"
"""


def config(url: str, policy: Path) -> str:
    return f"""
policy_file = "{policy}"
[local]
embedding_model = ""
[[providers]]
name = "openai"
kind = "openai"
zone = "cloud"
base_url = "{url}/v1"
models = ["gpt-4o-mini"]
credential = "env:TEST_UPSTREAM_KEY"
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with mock_upstream(KEY) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("policy")
    (root / "policy.toml").write_text(POLICY)
    proc = ServerProcess(make_data_dir(root), config(upstream, root / "policy.toml"),
                         env=ENV).start()
    yield proc
    proc.stop()


def admin(proc: ServerProcess, method: str, path: str, **kwargs: Any) -> Any:
    with proc.client() as http:
        response = http.request(method, "/admin/v1" + path, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


def key_in(proc: ServerProcess, tenant: str, department: str) -> tuple[str, str]:
    t = admin(proc, "POST", "/tenants", json={"name": tenant})
    d = admin(proc, "POST", "/departments", json={"name": department, "tenant_id": t["id"]})
    a = admin(proc, "POST", "/apps", json={"name": "app", "department_id": d["id"]})
    k = admin(proc, "POST", "/keys", json={"name": "k", "app_id": a["id"]})
    return k["id"], k["key"]


def calls(url: str) -> int:
    stats: dict[str, int] = httpx.get(url + "/_stats", params={"by": "model"}).json()
    return stats.get("gpt-4o-mini", 0)


def ask(proc: ServerProcess, key: str) -> Any:
    client = openai.OpenAI(base_url=proc.base_url, api_key=key, max_retries=0)
    return client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=PUBLIC, max_tokens=5)


def test_overrides_decide_per_department_and_tenant(gateway: ServerProcess,
                                                   upstream: str) -> None:
    _, hospital = key_in(gateway, "Hospital", "Cardiology")
    _, radiology = key_in(gateway, "Hospital 2", "Radiology")
    plant_id, plant = key_in(gateway, "Plant", "Line 1")

    before = calls(upstream)
    raw = ask(gateway, hospital)  # no override: public data may reach the cloud
    assert raw.headers["x-appliance-zone"] == "cloud"
    assert calls(upstream) == before + 1

    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(gateway, radiology)  # Radiology: not even public data leaves the site
    assert refused.value.code == "sensitivity_policy"
    assert "cloud" in refused.value.message

    raw = ask(gateway, plant)  # Plant declares everything confidential: rerouted on device
    assert raw.headers["x-appliance-sensitivity"] == "confidential"
    assert raw.headers["x-appliance-route"] == "local/gemma-3-270m"
    assert calls(upstream) == before + 1  # neither refused nor rerouted request went out

    shown = admin(gateway, "GET", "/policy", params={"key_id": plant_id})
    assert shown["version"] == 3 and shown["source"].startswith("file ")
    assert shown["effective"]["classification"] == "confidential"
    assert shown["effective"]["fallback_model"]["confidential"] == "gemma-3-270m"


def test_a_broken_policy_file_stops_the_start_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text('[[overrides]]\napp = "x"\nzones.public = []\n')
    proc = ServerProcess(make_data_dir(tmp_path, with_models=False),
                         f'policy_file = "{tmp_path / "policy.toml"}"\n')
    with pytest.raises(RuntimeError):
        proc.start(timeout=30)
    assert "unknown field `overrides[0].zones`" in proc.output
    assert "Traceback" not in proc.output
    assert proc.proc is not None and proc.proc.wait(10) == 1
