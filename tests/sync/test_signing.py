"""``sync.signing``: the signed-request format both the box and central use."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from sync.signing import (BoxAuth, SignatureError, generate_key, load_private_key,
                          public_key_b64, public_key_from_b64, save_private_key, sign_headers,
                          verify_headers)

NOW = 1_700_000_000.0
BODY = b'{"seq": 1}'


def _code(call: object) -> str:
    with pytest.raises(SignatureError) as info:
        call()  # type: ignore[operator]
    return info.value.code


def test_round_trip() -> None:
    key = generate_key()
    headers = sign_headers(key, "box_1", "POST", "/v1/usage", BODY, now=NOW)
    assert headers["x-appliance-box"] == "box_1"
    assert headers["x-appliance-timestamp"] == str(int(NOW))
    assert len(headers["x-appliance-nonce"]) == 32
    verify_headers(key.public_key(), "POST", "/v1/usage", headers, BODY, now=NOW + 299)


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/v1/usage", BODY),            # another method
    ("POST", "/v1/checkpoints", BODY),     # another path
    ("POST", "/v1/usage?x=1", BODY),       # a query added
    ("POST", "/v1/usage", b'{"seq": 2}'),  # another body
])
def test_anything_changed_breaks_the_signature(method: str, path: str, body: bytes) -> None:
    key = generate_key()
    headers = sign_headers(key, "box_1", "POST", "/v1/usage", BODY, now=NOW)
    assert _code(lambda: verify_headers(key.public_key(), method, path, headers, body,
                                        now=NOW)) == "signature_invalid"


def test_another_key_or_a_changed_timestamp_is_invalid() -> None:
    key = generate_key()
    headers = sign_headers(key, "box_1", "POST", "/v1/usage", BODY, now=NOW)
    other = generate_key().public_key()
    assert _code(lambda: verify_headers(other, "POST", "/v1/usage", headers, BODY,
                                        now=NOW)) == "signature_invalid"
    moved = {**headers, "x-appliance-timestamp": str(int(NOW) + 1)}
    assert _code(lambda: verify_headers(key.public_key(), "POST", "/v1/usage", moved, BODY,
                                        now=NOW)) == "signature_invalid"


def test_stale_either_way() -> None:
    key = generate_key()
    for skew in (-301, 301):
        headers = sign_headers(key, "box_1", "GET", "/v1/x", b"", now=NOW + skew)
        assert _code(lambda: verify_headers(key.public_key(), "GET", "/v1/x", headers, b"",
                                            now=NOW)) == "stale_request"


@pytest.mark.parametrize("header,value", [
    ("x-appliance-signature", None), ("x-appliance-nonce", None),
    ("x-appliance-timestamp", "12.5"), ("x-appliance-nonce", "zz" * 16),
    ("x-appliance-signature", "not base64!"),
])
def test_missing_or_malformed_headers(header: str, value: str | None) -> None:
    key = generate_key()
    headers = sign_headers(key, "box_1", "GET", "/v1/x", b"", now=NOW)
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    assert _code(lambda: verify_headers(key.public_key(), "GET", "/v1/x", headers, b"",
                                        now=NOW)) == "signature_missing"


def test_key_files_are_private_and_load_back(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "keys" / "box.key"
    save_private_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_b64(load_private_key(path)) == public_key_b64(key)
    assert public_key_b64(public_key_from_b64(public_key_b64(key))) == public_key_b64(key)
    with pytest.raises(ValueError):
        public_key_from_b64("AAAA")


def test_box_auth_signs_the_path_and_query_as_sent() -> None:
    key = generate_key()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with httpx.Client(base_url="http://central.test", auth=BoxAuth("box_9", key),
                      transport=httpx.MockTransport(handler)) as client:
        client.get("/v1/usage/totals", params={"group_by": "box,model"})
        client.post("/v1/usage", content=BODY)
    get, post = seen
    assert get.url.raw_path == b"/v1/usage/totals?group_by=box%2Cmodel"
    verify_headers(key.public_key(), "GET", get.url.raw_path.decode(), get.headers, b"",
                   now=float(get.headers["x-appliance-timestamp"]))
    verify_headers(key.public_key(), "POST", "/v1/usage", post.headers, BODY,
                   now=float(post.headers["x-appliance-timestamp"]))
    assert get.headers["x-appliance-nonce"] != post.headers["x-appliance-nonce"]
