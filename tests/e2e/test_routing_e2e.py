"""Aliases, policy rerouting and fallback through the real server against the mock upstream:
an alias serves its first allowed, healthy candidate; restricted data is rerouted away from
the cloud without a single upstream call there; a candidate failing before its first byte
falls back to the next; a provider failing repeatedly is skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ServerProcess, make_data_dir, run_cli
from tests.mock_upstream import mock_upstream

KEY = "sk-upstream-test-0123456789"
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
[aliases]
auto = ["gpt-4o-mini", "site-llama", "gemma-3-270m"]
cloud-only = ["gpt-4o-mini"]
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
    proc = ServerProcess(data, config(upstream), env={"TEST_UPSTREAM_KEY": KEY}).start()
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
