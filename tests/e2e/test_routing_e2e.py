"""Aliases, policy rerouting, fallback and circuits through the real server against the mock
upstream: an alias serves its first allowed, healthy candidate; restricted data is rerouted
away from the cloud without a single upstream call there; a candidate failing before its first
byte falls back to the next; a slow candidate goes after a fast one under a latency budget; a
provider failing repeatedly is skipped; a cloud provider that cannot be connected to takes the
whole cloud zone out at once (uplink down) while site keeps serving, until a half-open trial
succeeds; ``GET /admin/v1/providers`` and ``appliance providers status`` show all of it."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ServerProcess, make_data_dir, run_cli
from tests.mock_upstream import ENV, KEY, mock_upstream

PHI = [{"role": "user", "content": "Patient Jane Doe, MRN 55512345, has type 2 diabetes."}]
PUBLIC = [{"role": "user", "content": "Name three primary colours."}]


def config(url: str) -> str:
    return f"""
[local]
embedding_model = ""
[[providers]]
name = "openai"
kind = "openai"
zone = "cloud"
base_url = "{url}/v1"
models = ["gpt-4o-mini"]
credential = "env:TEST_UPSTREAM_KEY"
timeouts = {{first_byte = 1, total = 30}}
[[providers]]
name = "vllm"
kind = "openai_compatible"
zone = "site"
base_url = "{url}/v1"
models = ["site-llama"]
credential = "env:TEST_UPSTREAM_KEY"
[[providers]]
name = "slowsite"
kind = "openai_compatible"
zone = "site"
base_url = "{url}/v1"
models = ["slow-llama"]
credential = "env:TEST_UPSTREAM_KEY"
timeouts = {{first_byte = 20, total = 60}}
[aliases]
auto = ["gpt-4o-mini", "site-llama", "gemma-3-270m"]
cloud-only = ["gpt-4o-mini"]
budgeted = ["slow-llama", "site-llama"]
[aliases.strict]
candidates = ["gpt-4o-mini", "site-llama"]
[policy.on_forbidden]
confidential = "reroute"
[policy.fallback_model]
confidential = "site-llama"
[provider_health]
failure_threshold = 3
cooldown_seconds = 120
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with mock_upstream(KEY, slow_seconds=3.0) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = make_data_dir(tmp_path_factory.mktemp("routing"))
    proc = ServerProcess(data, config(upstream), env=ENV).start()
    yield proc
    proc.stop()


def client(gateway: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.admin_key, max_retries=0)


def calls(url: str) -> dict[str, int]:
    result: dict[str, int] = httpx.get(url + "/_stats", params={"by": "model"}).json()
    return result


def audit_records(gateway: ServerProcess, action: str) -> list[dict[str, Any]]:
    search = run_cli("audit", "search", "--json", "--action", action, data_dir=gateway.data_dir)
    assert search.returncode == 0, search.stderr
    return [json.loads(line) for line in search.stdout.splitlines() if line.strip()]


def test_aliases_are_listed(gateway: ServerProcess) -> None:
    models = {m.id: m.owned_by for m in client(gateway).models.list()}
    assert models["auto"] == models["cloud-only"] == "appliance"
    assert "gpt-4o-mini" in models and "site-llama" in models


def test_an_alias_serves_its_first_candidate(gateway: ServerProcess, upstream: str) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="auto", messages=PUBLIC, max_tokens=5)
    assert raw.headers["x-appliance-route"] == "openai/gpt-4o-mini"
    assert raw.parse().choices[0].message.content


def test_restricted_prompt_on_an_alias_is_rerouted_on_site(gateway: ServerProcess,
                                                          upstream: str) -> None:
    before = calls(upstream)
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="auto", messages=PHI, max_tokens=5, extra_headers={"x-request-id": "phi-auto"})
    assert raw.headers["x-appliance-route"] == "vllm/site-llama"
    assert raw.headers["x-appliance-zone"] == "site"
    after = calls(upstream)
    assert after.get("gpt-4o-mini", 0) == before.get("gpt-4o-mini", 0), (before, after)
    assert after.get("site-llama") == before.get("site-llama", 0) + 1, (before, after)
    rerouted = [r for r in audit_records(gateway, "reroute") if r["request_id"] == "phi-auto"]
    assert rerouted and rerouted[0]["model_requested"] == "auto"
    assert rerouted[0]["model_served"] == "site-llama" and rerouted[0]["zone"] == "site"


def test_concrete_cloud_model_is_blocked_unless_a_fallback_is_configured(
        gateway: ServerProcess, upstream: str) -> None:
    before = calls(upstream)
    with pytest.raises(openai.PermissionDeniedError) as info:
        client(gateway).chat.completions.create(model="gpt-4o-mini", messages=PHI,
                                                max_tokens=5)
    assert info.value.code == "sensitivity_policy"
    # confidential has on_forbidden = "reroute" and a fallback model on site.
    declared = httpx.post(gateway.url + "/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "messages": PUBLIC, "max_tokens": 5},
        headers={"authorization": f"Bearer {gateway.admin_key}",
                 "x-data-classification": "confidential"})
    assert declared.status_code == 200, declared.text
    assert declared.headers["x-appliance-route"] == "vllm/site-llama"
    assert calls(upstream).get("gpt-4o-mini", 0) == before.get("gpt-4o-mini", 0)


def test_all_candidates_forbidden_is_refused_with_reasons(gateway: ServerProcess) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        client(gateway).chat.completions.create(model="cloud-only", messages=PHI, max_tokens=5)
    assert info.value.code == "sensitivity_policy"
    assert "cloud-only" in info.value.message and "cloud zone" in info.value.message


def test_a_failing_first_candidate_falls_back_to_the_next(gateway: ServerProcess,
                                                          upstream: str) -> None:
    failing = [{"role": "user", "content": "Say hi. mock:500@gpt-4o-mini"}]
    before = calls(upstream)
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="strict", messages=failing, max_tokens=5)
    assert raw.headers["x-appliance-route"] == "vllm/site-llama"
    after = calls(upstream)
    assert after["gpt-4o-mini"] == before["gpt-4o-mini"] + 1  # tried, failed
    assert after["site-llama"] == before["site-llama"] + 1  # served


def test_a_stream_timing_out_before_its_first_byte_falls_back(gateway: ServerProcess,
                                                              upstream: str) -> None:
    slow = [{"role": "user", "content": "Say hi. mock:slow_first_byte@gpt-4o-mini"}]
    before = calls(upstream)
    with client(gateway).chat.completions.with_streaming_response.create(
            model="strict", messages=slow, max_tokens=5, stream=True) as response:
        assert response.headers["x-appliance-route"] == "vllm/site-llama"
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text
    after = calls(upstream)
    assert after["gpt-4o-mini"] == before["gpt-4o-mini"] + 1
    assert after["site-llama"] == before["site-llama"] + 1


def test_without_another_candidate_the_error_reaches_the_client(gateway: ServerProcess) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client(gateway).chat.completions.create(
            model="cloud-only", max_tokens=5,
            messages=[{"role": "user", "content": "hi mock:500@gpt-4o-mini"}])
    assert info.value.status_code == 502


def admin_providers(gateway: ServerProcess, key: str | None = None) -> dict[str, Any]:
    with gateway.client() as http:
        response = http.get("/admin/v1/providers", headers=(
            {"authorization": f"Bearer {key}"} if key else {}))
    assert response.status_code == 200, response.text
    return {item["name"]: item for item in response.json()["data"]}


def test_a_slow_candidate_goes_after_a_fast_one_under_a_latency_budget(
        gateway: ServerProcess) -> None:
    openai_client = client(gateway)
    slow = [{"role": "user", "content": "Say hi. mock:slow_first_byte@slow-llama"}]
    raw = openai_client.chat.completions.with_raw_response.create(
        model="budgeted", messages=slow, max_tokens=5)
    assert raw.headers["x-appliance-route"] == "slowsite/slow-llama"  # unmeasured: in order
    openai_client.chat.completions.create(model="site-llama", messages=PUBLIC, max_tokens=5)
    measured = admin_providers(gateway)["slowsite"]["latency"]["slow-llama"]
    assert measured["ttft_ms"]["p95"] >= 3000  # the mock held its first byte for 3s
    assert measured["tokens_per_second"]["samples"] == 1
    raw = openai_client.chat.completions.with_raw_response.create(
        model="budgeted", messages=PUBLIC, max_tokens=5,
        extra_headers={"x-appliance-max-latency-ms": "1500"})
    assert raw.headers["x-appliance-route"] == "vllm/site-llama"
    raw = openai_client.chat.completions.with_raw_response.create(
        model="budgeted", messages=PUBLIC, max_tokens=5)
    assert raw.headers["x-appliance-route"] == "slowsite/slow-llama"  # no budget: in order


def test_the_providers_route_is_for_admins_operators_and_auditors(
        gateway: ServerProcess) -> None:
    keys = {}
    with gateway.client() as http:
        owner: dict[str, str] = {}
        for plural, kind in (("tenants", "tenant"), ("departments", "department"),
                             ("apps", "app")):
            made = http.post(f"/admin/v1/{plural}", json={"name": f"routing-{kind}", **owner})
            assert made.status_code == 201, made.text
            owner = {f"{kind}_id": made.json()["id"]}
        for role, extra in (("auditor", {}), ("client", owner)):
            created = http.post("/admin/v1/keys", json={"name": role, "role": role, **extra})
            assert created.status_code == 201, created.text
            keys[role] = created.json()["key"]
        refused = http.get("/admin/v1/providers",
                           headers={"authorization": f"Bearer {keys['client']}"})
    assert refused.status_code == 403
    listed = admin_providers(gateway, keys["auditor"])
    assert set(listed) == {"openai", "vllm", "slowsite", "local"}
    assert listed["openai"]["zone"] == "cloud" and listed["openai"]["kind"] == "openai"
    assert listed["vllm"]["models"] == ["site-llama"]
    assert listed["local"]["zone"] == "device" and listed["local"]["kind"] == "local"


def test_a_failing_provider_is_skipped_after_repeated_failures(gateway: ServerProcess,
                                                               upstream: str) -> None:
    # Last in this module: it leaves the cloud provider cooling down.
    openai_client = client(gateway)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=PUBLIC, max_tokens=5)
    failing = [{"role": "user", "content": "Say hi. mock:503@gpt-4o-mini"}]
    for _ in range(3):
        openai_client.chat.completions.create(model="strict", messages=failing, max_tokens=5)
    before = calls(upstream)
    raw = openai_client.chat.completions.with_raw_response.create(
        model="strict", messages=PUBLIC, max_tokens=5)
    assert raw.headers["x-appliance-route"] == "vllm/site-llama"
    assert calls(upstream).get("gpt-4o-mini") == before.get("gpt-4o-mini")  # not even tried
    with pytest.raises(openai.APIStatusError) as info:
        openai_client.chat.completions.create(model="cloud-only", messages=PUBLIC,
                                              max_tokens=5)
    assert info.value.status_code == 503
    assert "unhealthy" in info.value.message and "cloud-only" in info.value.message
    circuit = admin_providers(gateway)["openai"]["circuit"]
    assert circuit["state"] == "open" and circuit["consecutive_failures"] == 3
    assert circuit["reason"] == "3 consecutive failures" and circuit["retry_in_seconds"] > 0


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def uplink_config(url: str, dead_port: int) -> str:
    return f"""
[local]
embedding_model = ""
[[providers]]
name = "openai"
kind = "openai"
zone = "cloud"
base_url = "{url}/v1"
models = ["gpt-4o-mini"]
credential = "env:TEST_UPSTREAM_KEY"
[[providers]]
name = "faraway"
kind = "openai"
zone = "cloud"
base_url = "http://127.0.0.1:{dead_port}/v1"
models = ["gpt-far"]
credential = "env:TEST_UPSTREAM_KEY"
[[providers]]
name = "vllm"
kind = "openai_compatible"
zone = "site"
base_url = "{url}/v1"
models = ["site-llama"]
credential = "env:TEST_UPSTREAM_KEY"
[aliases]
far = ["gpt-far", "site-llama"]
near = ["gpt-4o-mini"]
[provider_health]
failure_threshold = 5
cooldown_seconds = 5
"""


@pytest.fixture(scope="module")
def uplink_gateway(upstream: str, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[ServerProcess]:
    data = make_data_dir(tmp_path_factory.mktemp("uplink"))
    proc = ServerProcess(data, uplink_config(upstream, closed_port()),
                         env=ENV).start()
    yield proc
    proc.stop()


def test_a_cloud_provider_that_cannot_be_reached_takes_the_cloud_zone_out_at_once(
        uplink_gateway: ServerProcess, upstream: str) -> None:
    gateway, openai_client = uplink_gateway, client(uplink_gateway)
    raw = openai_client.chat.completions.with_raw_response.create(
        model="near", messages=PUBLIC, max_tokens=5)
    assert raw.headers["x-appliance-route"] == "openai/gpt-4o-mini"
    raw = openai_client.chat.completions.with_raw_response.create(
        model="far", messages=PUBLIC, max_tokens=5)
    assert raw.headers["x-appliance-route"] == "vllm/site-llama"  # site keeps serving
    before = calls(upstream)
    with pytest.raises(openai.APIStatusError) as info:
        openai_client.chat.completions.create(model="near", messages=PUBLIC, max_tokens=5)
    assert info.value.status_code == 503
    assert "uplink down: provider 'faraway' could not be reached (upstream_unreachable)" \
        in info.value.message
    assert calls(upstream).get("gpt-4o-mini") == before.get("gpt-4o-mini")  # not even tried

    providers = admin_providers(gateway)
    # One failure, threshold 5: both cloud circuits opened at once; site and device did not.
    for name in ("openai", "faraway"):
        assert providers[name]["circuit"]["state"] in ("open", "half_open")
        assert providers[name]["circuit"]["reason"].startswith("uplink down")
    assert providers["faraway"]["circuit"]["consecutive_failures"] == 1
    assert providers["openai"]["circuit"]["consecutive_failures"] == 0
    assert providers["vllm"]["circuit"]["state"] == providers["local"]["circuit"]["state"] \
        == "closed"
    assert providers["openai"]["latency"]["gpt-4o-mini"]["ttft_ms"]["samples"] == 1
    assert providers["faraway"]["latency"]["gpt-far"] is None

    status = run_cli("providers", "status", "--url", gateway.url, data_dir=gateway.data_dir)
    assert status.returncode == 0, status.stderr
    assert "faraway" in status.stdout and "gpt-4o-mini" in status.stdout
    assert "openai: uplink down: provider 'faraway'" in status.stdout
    as_json = run_cli("providers", "status", "--json", "--url", gateway.url,
                      data_dir=gateway.data_dir)
    assert as_json.returncode == 0, as_json.stderr
    listed = {item["name"]: item for item in json.loads(as_json.stdout)["data"]}
    assert listed["faraway"]["circuit"]["reason"].startswith("uplink down")

    # After the cool-down each cloud circuit lets a trial through, on its own.
    deadline = time.monotonic() + 60
    while admin_providers(gateway)["openai"]["circuit"]["state"] != "half_open":
        assert time.monotonic() < deadline, "the circuit never went half-open"
        time.sleep(0.2)
    raw = openai_client.chat.completions.with_raw_response.create(
        model="near", messages=PUBLIC, max_tokens=5)
    assert raw.headers["x-appliance-route"] == "openai/gpt-4o-mini"
    raw = openai_client.chat.completions.with_raw_response.create(
        model="far", messages=PUBLIC, max_tokens=5)  # faraway's trial fails: site serves
    assert raw.headers["x-appliance-route"] == "vllm/site-llama"
    providers = admin_providers(gateway)
    assert providers["openai"]["circuit"]["state"] == "closed"
    assert providers["faraway"]["circuit"]["state"] == "open"
    assert providers["faraway"]["circuit"]["trips"] == 2


def test_providers_status_without_a_daemon_says_so(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, with_models=False)
    (data / "secrets").mkdir(mode=0o700)
    (data / "secrets" / "admin.key").write_text("sk-test\n")
    result = run_cli("providers", "status", "--url", f"http://127.0.0.1:{closed_port()}",
                     data_dir=data)
    assert result.returncode == 1 and "cannot be reached" in result.stderr
