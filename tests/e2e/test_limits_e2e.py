"""Limits, budgets and usage through the real server: concurrent requests never overshoot a
budget, refusals are 429 with OpenAI's headers, and the usage report adds up."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, make_data_dir, run_cli

CONFIG = """
[local]
queue_size = 256
embedding_model = ""
[limits_policy]
ledger_batch_interval_ms = 100
[limits_policy.prices.gemma-3-270m]
input = 1000000
output = 1000000
"""
BUDGET = 1500  # micro-dollars: at 1 µ$ per token, room for roughly 100 small requests
RATELIMIT_HEADERS = ("x-ratelimit-limit-requests", "x-ratelimit-limit-tokens",
                     "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens",
                     "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")


def admin(server: ServerProcess, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, server.url + "/admin/v1" + path, timeout=30,
                             headers={"authorization": f"Bearer {server.admin_key}"}, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


@pytest.fixture
def budgeted(tmp_path: Path, fresh_server: list[ServerProcess]) -> tuple[ServerProcess, str]:
    proc = ServerProcess(make_data_dir(tmp_path), CONFIG).start()
    fresh_server.append(proc)
    tenant = admin(proc, "POST", "/tenants", json={"name": "Plant"})
    dept = admin(proc, "POST", "/departments", json={"name": "Line", "tenant_id": tenant["id"]})
    app = admin(proc, "POST", "/apps", json={"name": "mes", "department_id": dept["id"]})
    created = admin(proc, "POST", "/keys", json={"name": "mes", "app_id": app["id"]})
    admin(proc, "PUT", f"/limits/department/{dept['id']}",
          json={"monthly_budget_micros": BUDGET})
    # Per-minute limits generous enough not to refuse anything here: they give the
    # x-ratelimit-* headers something to report.
    admin(proc, "PUT", f"/limits/key/{created['id']}", json={"rpm": 10000, "tpm": 10000000})
    key = created["key"]
    return proc, key


def test_200_concurrent_requests_never_overshoot_the_budget(
        budgeted: tuple[ServerProcess, str]) -> None:
    proc, key = budgeted
    before = httpx.get(proc.url + "/readyz").json()["pool"]["completed"]

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=proc.url, timeout=120,
                                     limits=httpx.Limits(max_connections=200)) as http:
            body = {"model": "gemma-3-270m", "max_tokens": 2, "temperature": 0,
                    "messages": [{"role": "user", "content": "Say yes."}]}
            return await asyncio.gather(*(
                http.post("/v1/chat/completions", json=body,
                          headers={"authorization": f"Bearer {key}"}) for _ in range(200)))

    responses = asyncio.run(run())
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(refused) == 200, {r.status_code for r in responses}
    assert ok and refused
    for response in refused:
        error = response.json()["error"]
        assert error["type"] == "rate_limit_error"
        assert "department 'Line'" in error["message"]
        assert int(response.headers["retry-after"]) >= 1
    for response in ok + refused[:3]:
        assert all(name in response.headers for name in RATELIMIT_HEADERS), response.headers
    # No refused request reached the model: it generated exactly for the admitted ones.
    after = httpx.get(proc.url + "/readyz").json()["pool"]["completed"]
    assert after - before == len(ok)
    charged = sum(r.json()["usage"]["total_tokens"] for r in ok)  # 1 µ$ per token
    assert charged <= BUDGET

    assert proc.stop() == 0  # a clean stop writes every ledger row
    report = run_cli("usage", "report", "--group-by", "department,model", "--json",
                     data_dir=proc.data_dir)
    assert report.returncode == 0, report.stderr
    rows = json.loads(report.stdout)
    served = [r for r in rows if r.get("model") == "gemma-3-270m"]
    assert sum(r["cost_micros"] for r in served) == charged
    assert sum(r["requests"] for r in rows) == 200  # refusals are in the ledger too


def test_usage_report_over_http_and_bad_group_by(budgeted: tuple[ServerProcess, str]) -> None:
    proc, key = budgeted
    with httpx.Client(base_url=proc.url, timeout=60,
                      headers={"authorization": f"Bearer {key}"}) as http:
        reply = http.post("/v1/chat/completions", json={
            "model": "gemma-3-270m", "max_tokens": 1,
            "messages": [{"role": "user", "content": "x"}]})
        assert reply.status_code == 200
        assert http.get("/admin/v1/usage").status_code == 403  # clients see no reports
    bad = httpx.get(proc.url + "/admin/v1/usage?group_by=colour", timeout=30,
                    headers={"authorization": f"Bearer {proc.admin_key}"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"

    def report() -> Any:
        return admin(proc, "GET", "/usage?group_by=app")["data"]

    for _ in range(50):  # the ledger writes every 100 ms
        if report():
            break
        asyncio.run(asyncio.sleep(0.1))
    rows = report()
    assert rows and rows[0]["requests"] >= 1 and rows[0]["cost_micros"] > 0
