"""Redaction through the real server against the mock upstream: with ``on_forbidden.restricted
= "redact"`` a restricted prompt reaches the cloud with placeholders instead of identifiers
(checked on what the mock received), and the client's answer, whole or streamed with
placeholders split across chunks, carries the original values; with ``block`` nothing leaves,
and neither does a redacted prompt that is still too sensitive for the cloud."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ServerProcess, make_data_dir, run_cli
from tests.mock_upstream import ENV, KEY, mock_upstream, providers_toml

VALUES = ("Jane Doe", "55512345", "123-45-6789")
SYSTEM = "You are a scribe. The patient today is Jane Doe."


def phi(tag: str, directive: str = "mock:echo") -> list[Any]:
    """A restricted conversation; ``tag`` finds it again among the mock's requests."""
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Case {tag}: patient Jane Doe, MRN 55512345, "
                                        f"SSN 123-45-6789, has type 2 diabetes. {directive}"}]


def echoed(messages: list[Any]) -> str:
    """What the mock's echo answers: the contents of all messages, one per line."""
    return "\n".join(m["content"] for m in messages)


def config(url: str) -> str:
    return providers_toml(url) + """
[aliases]
cloud-only = ["gpt-4o-mini"]
mixed = ["gpt-4o-mini", "site-llama"]
[policy.on_forbidden]
restricted = "redact"
[[policy.overrides]]
app = "blocking-app"
on_forbidden = { restricted = "block" }
[provider_health]
failure_threshold = 100
[audit]
content = "redacted"
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with mock_upstream(KEY) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = make_data_dir(tmp_path_factory.mktemp("redaction"))
    proc = ServerProcess(data, config(upstream), env=ENV).start()
    yield proc
    proc.stop()


def client(gateway: ServerProcess, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key or gateway.admin_key,
                         max_retries=0)


def received(upstream: str, tag: str) -> list[dict[str, Any]]:
    """The requests the mock received whose body mentions ``tag``."""
    bodies: list[dict[str, Any]] = httpx.get(upstream + "/_requests").json()
    return [r for r in bodies if f"Case {tag}:" in json.dumps(r["body"])]


def calls(upstream: str) -> int:
    return sum(httpx.get(upstream + "/_stats").json().values())


def assert_redacted(request: dict[str, Any]) -> None:
    sent = json.dumps(request["body"])
    for value in VALUES:
        assert value not in sent, value
    for placeholder in ("[PERSON_1]", "[MRN_1]", "[SSN_1]"):
        assert placeholder in sent, placeholder
    system, user = request["body"]["messages"]
    # one person, one placeholder, in every message
    assert "[PERSON_1]" in system["content"] and "[PERSON_1]" in user["content"]
    assert "[PERSON_2]" not in sent


def test_a_restricted_prompt_reaches_the_cloud_only_redacted(gateway: ServerProcess,
                                                             upstream: str) -> None:
    messages = phi("whole")
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, extra_headers={"x-request-id": "redact-whole"})
    assert raw.headers["x-appliance-action"] == "redact"
    assert raw.headers["x-appliance-zone"] == "cloud"
    assert raw.headers["x-appliance-sensitivity"] == "restricted"
    assert raw.parse().choices[0].message.content == echoed(messages)
    [sent] = received(upstream, "whole")
    assert sent["model"] == "gpt-4o-mini"
    assert_redacted(sent)


def test_a_stream_is_reidentified_across_split_placeholders(gateway: ServerProcess,
                                                           upstream: str) -> None:
    messages = phi("stream")
    with client(gateway).chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=messages, stream=True) as response:
        assert response.headers["x-appliance-action"] == "redact"
        pieces = [chunk.choices[0].delta.content or "" for chunk in response.parse()
                  if chunk.choices]
    [sent] = received(upstream, "stream")
    assert_redacted(sent)
    # The mock echoes in three-character chunks, so every placeholder arrived split; the
    # client never sees a piece of one, only the values.
    assert "".join(pieces) == echoed(messages)
    assert not any("[" in piece for piece in pieces)
    assert len(pieces) > 20


def test_the_completions_endpoint_is_redacted_too(gateway: ServerProcess,
                                                  upstream: str) -> None:
    prompt = echoed(phi("completion"))
    response = client(gateway).completions.create(model="gpt-4o-mini", prompt=prompt)
    assert response.choices[0].text == prompt
    [sent] = received(upstream, "completion")
    assert all(value not in json.dumps(sent["body"]) for value in VALUES)


def test_an_alias_of_cloud_candidates_is_redacted(gateway: ServerProcess,
                                                  upstream: str) -> None:
    messages = phi("alias")
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="cloud-only", messages=messages)
    assert raw.headers["x-appliance-action"] == "redact"
    assert raw.parse().choices[0].message.content == echoed(messages)
    assert_redacted(received(upstream, "alias")[0])


def test_an_alias_takes_its_allowed_candidate_first_unredacted(gateway: ServerProcess,
                                                               upstream: str) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="mixed", messages=phi("mixed"))
    assert raw.headers["x-appliance-route"] == "vllm/site-llama"
    assert raw.headers["x-appliance-action"] == "reroute"
    [sent] = received(upstream, "mixed")
    assert sent["model"] == "site-llama"
    assert all(value in json.dumps(sent["body"]) for value in VALUES)  # on site: as sent


def test_an_alias_falls_back_to_its_redacted_candidate(gateway: ServerProcess,
                                                       upstream: str) -> None:
    messages = phi("fallback", "mock:500@site-llama mock:echo")
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="mixed", messages=messages)
    assert raw.headers["x-appliance-route"] == "openai/gpt-4o-mini"
    assert raw.headers["x-appliance-action"] == "redact"
    site, cloud = received(upstream, "fallback")
    assert site["model"] == "site-llama" and "Jane Doe" in json.dumps(site["body"])
    assert cloud["model"] == "gpt-4o-mini"
    assert_redacted(cloud)


def test_a_public_prompt_is_allowed_as_it_is(gateway: ServerProcess, upstream: str) -> None:
    messages: list[Any] = [{"role": "user", "content": "Case public: name three primary colours."}]
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages)
    assert raw.headers["x-appliance-action"] == "allow"
    assert received(upstream, "public")[0]["body"]["messages"] == messages


def test_block_sends_nothing(gateway: ServerProcess, upstream: str) -> None:
    admin = gateway.client()
    tenant = admin.post("/admin/v1/tenants", json={"name": "Redaction Hospital"}).json()
    dept = admin.post("/admin/v1/departments",
                      json={"name": "Wards", "tenant_id": tenant["id"]}).json()
    app = admin.post("/admin/v1/apps", json={"name": "blocking-app",
                                             "department_id": dept["id"]}).json()
    created = admin.post("/admin/v1/keys", json={"name": "k", "app_id": app["id"]})
    assert created.status_code == 201, created.text
    before = calls(upstream)
    with pytest.raises(openai.PermissionDeniedError) as info:
        client(gateway, created.json()["key"]).chat.completions.create(
            model="gpt-4o-mini", messages=phi("blocked"))
    assert info.value.code == "sensitivity_policy"
    assert info.value.response.headers["x-appliance-action"] == "block"
    assert calls(upstream) == before and received(upstream, "blocked") == []


def test_a_redacted_prompt_still_too_sensitive_is_blocked(gateway: ServerProcess,
                                                          upstream: str) -> None:
    before = calls(upstream)
    with pytest.raises(openai.PermissionDeniedError) as info:
        client(gateway).chat.completions.create(
            model="gpt-4o-mini", messages=phi("declared"),
            extra_headers={"x-data-classification": "restricted"})
    assert info.value.code == "sensitivity_policy"
    assert "redacted it is still classified restricted (declared restricted)" in (
        info.value.message)
    assert info.value.response.headers["x-appliance-action"] == "block"
    assert not any(value in info.value.message for value in VALUES)
    assert calls(upstream) == before and received(upstream, "declared") == []


def test_the_audit_keeps_the_redacted_text_never_the_values(gateway: ServerProcess) -> None:
    client(gateway).chat.completions.create(model="gpt-4o-mini", messages=phi("audit"),
                                            extra_headers={"x-request-id": "redact-audit"})
    search = run_cli("audit", "search", "--json", "--action", "redact",
                     data_dir=gateway.data_dir)
    assert search.returncode == 0, search.stderr
    records = {r["request_id"]: r for r in map(json.loads, search.stdout.splitlines())}
    record = records["redact-audit"]
    assert record["zone"] == "cloud" and record["sensitivity"] == "restricted"
    assert record["content"]["mode"] == "redacted"
    assert "[PERSON_1]" in record["content"]["prompt"]
    assert "[MRN_1]" in record["content"]["response"]  # the echo, redacted again
    everything = run_cli("audit", "search", "--json", data_dir=gateway.data_dir).stdout
    assert "Case audit:" in everything
    assert not any(value in everything for value in VALUES)
