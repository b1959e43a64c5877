"""HTTP calls from the box to central, with central's errors mapped at this one boundary.

Exceptions::

    CentralError               anything that kept a call from being answered with success
    ├── CentralUnreachable     no answer: connection refused, DNS, timeout, or a 5xx
    └── CentralRefused         central answered 4xx; ``status`` and ``code`` say why
                               (``enrollment_token_used``, ``sequence_conflict``, ...)

Every call after enrollment is signed (``sync.signing.BoxAuth``); enrollment is not.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.signing import BoxAuth


class CentralError(Exception):
    """A call to central did not succeed; the message says what happened, for the status."""


class CentralUnreachable(CentralError):
    pass


class CentralRefused(CentralError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"central refused ({status} {code}): {message}")
        self.status = status
        self.code = code


def _answer(response: httpx.Response, url: str) -> dict[str, Any]:
    if response.status_code >= 500:
        raise CentralUnreachable(f"central answered {response.status_code} for {url}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {}
        raise CentralRefused(response.status_code, str(error.get("code") or "unknown"),
                             str(error.get("message") or response.reason_phrase))
    if not isinstance(body, dict):
        raise CentralUnreachable(f"central answered {url} with something other than a JSON "
                                 "object")
    return body


def _unreachable(url: str, exc: httpx.HTTPError) -> CentralUnreachable:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "cannot be reached"
    return CentralUnreachable(f"central {kind} ({url}): {exc.__class__.__name__}: {exc}")


def post_enrollment(central_url: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    """``POST /v1/enroll`` (unsigned; blocking: the CLI calls it)."""
    url = central_url.rstrip("/") + "/v1/enroll"
    try:
        response = httpx.post(url, content=json.dumps(body).encode(), timeout=timeout,
                              headers={"content-type": "application/json"})
    except httpx.HTTPError as exc:
        raise _unreachable(url, exc) from exc
    return _answer(response, url)


class CentralClient:
    """Signed calls for the agent (one ``httpx.AsyncClient``, opened and closed with it)."""

    def __init__(self, central_url: str, box_id: str, private_key: Ed25519PrivateKey,
                 timeout: float) -> None:
        self.central_url = central_url.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self.central_url,
                                         auth=BoxAuth(box_id, private_key), timeout=timeout,
                                         follow_redirects=False,
                                         headers={"content-type": "application/json"})

    async def post(self, path: str, body: bytes) -> dict[str, Any]:
        url = self.central_url + path
        try:
            response = await self._client.post(path, content=body)
        except httpx.HTTPError as exc:
            raise _unreachable(url, exc) from exc
        return _answer(response, url)

    async def close(self) -> None:
        await self._client.aclose()
