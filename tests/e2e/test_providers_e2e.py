"""Site and cloud providers through the real server, against the mock upstream process:
requests reach the right zone, and sensitive data never reaches a zone policy forbids."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import ServerProcess, make_data_dir, run_cli
from tests.mock_upstream import ENV, KEY, mock_upstream, providers_toml

PHI = [{"role": "user", "content": "Patient Jane Doe, MRN 55512345, has type 2 diabetes."}]
PUBLIC = [{"role": "user", "content": "Name three primary colours."}]


def config(url: str) -> str:
    return providers_toml(url)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with mock_upstream(KEY) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = make_data_dir(tmp_path_factory.mktemp("providers"))
    proc = ServerProcess(data, config(upstream), env=ENV).start()
    yield proc
    proc.stop()


def upstream_calls(url: str) -> int:
    return sum(httpx.get(url + "/_stats").json().values())


def test_models_from_every_zone(gateway: ServerProcess) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.admin_key, max_retries=0)
    assert {"gemma-3-270m", "gpt-4o-mini", "site-llama"} <= {m.id for m in client.models.list()}


def test_public_prompt_reaches_the_cloud_model(gateway: ServerProcess, upstream: str) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.admin_key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini",
                                                           messages=PUBLIC, max_tokens=20)
    assert raw.headers["x-appliance-zone"] == "cloud"
    assert raw.headers["x-appliance-route"] == "openai/gpt-4o-mini"
    reply = raw.parse()
    assert reply.choices[0].message.content and reply.usage is not None
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=PUBLIC, max_tokens=20, stream=True,
        stream_options={"include_usage": True}))
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_restricted_prompt_never_reaches_the_cloud(gateway: ServerProcess, upstream: str) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.admin_key, max_retries=0)
    before = upstream_calls(upstream)
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=PHI, max_tokens=5,
                                       extra_headers={"x-request-id": "phi-to-cloud"})
    assert info.value.code == "sensitivity_policy"
    declared = httpx.post(gateway.url + "/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "messages": PUBLIC, "max_tokens": 5},
        headers={"authorization": f"Bearer {gateway.admin_key}",
                 "x-data-classification": "confidential"})
    assert declared.status_code == 403
    assert upstream_calls(upstream) == before  # nothing was sent upstream
    # The same prompt may go to the model server on site.
    reply = client.chat.completions.with_raw_response.create(model="site-llama", messages=PHI,
                                                             max_tokens=5)
    assert reply.headers["x-appliance-zone"] == "site"
    assert reply.headers["x-appliance-sensitivity"] == "restricted"
    assert upstream_calls(upstream) == before + 1


def test_a_blocked_request_is_audited_as_block(gateway: ServerProcess) -> None:
    search = run_cli("audit", "search", "--json", "--action", "block", data_dir=gateway.data_dir)
    assert search.returncode == 0, search.stderr
    records = [json.loads(line) for line in search.stdout.splitlines() if line.strip()]
    blocked = [r for r in records if r.get("request_id") == "phi-to-cloud"]
    assert blocked and blocked[0]["sensitivity"] == "restricted"
    assert blocked[0]["model_requested"] == "gpt-4o-mini" and blocked[0]["status"] == 403
    assert {"person_name", "mrn"} <= set(blocked[0]["finding_types"])


def test_missing_credential_stops_the_start(tmp_path: Path, upstream: str) -> None:
    served = run_cli("serve", "--port", "0", data_dir=make_data_dir(tmp_path),
                     config=_write(tmp_path, config(upstream)))
    assert served.returncode == 1
    assert "TEST_UPSTREAM_KEY" in served.stderr and "Traceback" not in served.stderr


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(text)
    return path
