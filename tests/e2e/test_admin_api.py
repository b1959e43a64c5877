"""The admin API and CLI against a running appliance: identities, keys, roles, revocation."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ServerProcess, run_cli


def admin(server: ServerProcess, method: str, path: str, key: str | None = None,
          **kwargs: Any) -> httpx.Response:
    return httpx.request(method, server.url + "/admin/v1" + path, timeout=30,
                         headers={"authorization": f"Bearer {key or server.admin_key}"},
                         **kwargs)


@pytest.fixture(scope="module")
def app_id(server: ServerProcess) -> str:
    tenant = admin(server, "POST", "/tenants", json={"name": "Admin Test Hospital"}).json()
    dept = admin(server, "POST", "/departments",
                 json={"name": "Radiology", "tenant_id": tenant["id"]}).json()
    app = admin(server, "POST", "/apps", json={"name": "pacs", "department_id": dept["id"]})
    assert app.status_code == 201
    return str(app.json()["id"])


def new_key(server: ServerProcess, app_id: str | None, **body: Any) -> dict[str, Any]:
    response = admin(server, "POST", "/keys", json={"name": "k", "app_id": app_id, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_client_key_works_until_revoked(server: ServerProcess, app_id: str) -> None:
    created = new_key(server, app_id)
    client = openai.OpenAI(base_url=server.base_url, api_key=created["key"], max_retries=0)
    reply = client.chat.completions.create(model="gemma-3-270m", max_tokens=2,
                                           messages=[{"role": "user", "content": "hi"}])
    assert reply.usage is not None
    assert admin(server, "GET", f"/keys/{created['id']}").json()["last_used_at"] is not None
    assert admin(server, "POST", f"/keys/{created['id']}/revoke").status_code == 200
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_cli_revocation_reaches_the_running_server(server: ServerProcess, app_id: str) -> None:
    created = new_key(server, app_id)
    client = openai.OpenAI(base_url=server.base_url, api_key=created["key"], max_retries=0)
    assert client.models.list().data
    done = run_cli("keys", "revoke", created["id"], data_dir=server.data_dir)
    assert done.returncode == 0, done.stderr
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_scopes_limit_models(server: ServerProcess, app_id: str) -> None:
    created = new_key(server, app_id, scopes=["gemma-3-270m"])
    client = openai.OpenAI(base_url=server.base_url, api_key=created["key"], max_retries=0)
    assert [m.id for m in client.models.list()] == ["gemma-3-270m"]
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="all-minilm-l6-v2", input="x")


def test_roles(server: ServerProcess, app_id: str) -> None:
    client_key = new_key(server, app_id)["key"]
    for method, path in (("GET", "/keys"), ("GET", "/tenants"), ("POST", "/tenants")):
        response = admin(server, method, path, client_key, json={"name": "x"})
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "permission_denied"
    auditor = new_key(server, None, role="auditor")["key"]
    assert admin(server, "GET", "/keys", auditor).status_code == 200
    assert admin(server, "POST", "/tenants", auditor, json={"name": "x"}).status_code == 403
    operator = new_key(server, None, role="operator")["key"]
    assert admin(server, "POST", "/keys", operator,
                 json={"name": "c", "app_id": app_id}).status_code == 201
    refused = admin(server, "POST", "/keys", operator, json={"name": "a", "role": "admin"})
    assert refused.status_code == 403


def test_disabling_a_department_cuts_off_its_keys(server: ServerProcess) -> None:
    tenant = admin(server, "POST", "/tenants", json={"name": "Plant 7"}).json()
    dept = admin(server, "POST", "/departments",
                 json={"name": "Line 2", "tenant_id": tenant["id"]}).json()
    app = admin(server, "POST", "/apps", json={"name": "scada", "department_id": dept["id"]})
    key = new_key(server, app.json()["id"])["key"]
    client = openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)
    assert client.models.list().data
    assert admin(server, "POST", f"/departments/{dept['id']}/disable").status_code == 200
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_bad_admin_requests_name_the_field(server: ServerProcess, app_id: str) -> None:
    for body, param in (({"name": "x", "role": "root", "app_id": None}, "role"),
                        ({"name": "x"}, "app_id"),
                        ({"name": "x", "app_id": app_id, "colour": 1}, "colour")):
        response = admin(server, "POST", "/keys", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["param"] == param
    assert admin(server, "GET", "/tenants/nope").status_code == 404
    duplicate = admin(server, "POST", "/tenants", json={"name": "Admin Test Hospital"})
    assert duplicate.status_code == 409
