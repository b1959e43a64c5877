"""What one audit record says: a request, or an administrative event.

Records are msgspec Structs tagged by ``type`` so a segment can hold both kinds in order and a
reader decodes either without guessing. They are encoded with MessagePack before encryption
(compact and fast); exports show them as JSON. Findings are kept as *types* only
(``"us_ssn"``), never the values found, and the content of a request follows the configured
``content`` mode: nothing, a keyed hash, a redacted text with placeholders, or the full text.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from typing import Literal

import msgspec

from appliance.audit.config import ContentMode

Action = Literal["allow", "redact", "reroute", "block"]

AdminKind = Literal[
    "start", "stop",
    "key_created", "key_revoked",
    "config_changed", "policy_changed", "policy_rejected", "enrolled",
    "verification_failed",
    "recovered_torn_tail",
    "master_key_rotated",
    "purged",
    "audit_read",
]


class Principal(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Who asked: identifiers only, never secrets (``key_id`` is the key's public id)."""

    tenant: str = ""
    department: str = ""
    app: str = ""
    key_id: str = ""
    user: str = ""


class Content(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """The prompt and response as the ``content`` mode allows them to be kept."""

    mode: ContentMode = "none"
    prompt: str | None = None
    response: str | None = None


class RequestRecord(msgspec.Struct, tag="request", tag_field="type", kw_only=True,
                    frozen=True, omit_defaults=True):
    """One per request, whatever its outcome (a block or a 401 is recorded too)."""

    time: float = msgspec.field(default_factory=time.time)
    request_id: str
    principal: Principal = Principal()
    model_requested: str = ""
    model_served: str = ""
    provider: str = ""
    zone: str = ""
    sensitivity: str = "public"
    finding_types: tuple[str, ...] = ()
    action: Action = "allow"
    cache: str = "bypass"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    status: int = 200
    error_type: str = ""
    content: Content = Content()


class AdminEvent(msgspec.Struct, tag="admin", tag_field="type", kw_only=True, frozen=True,
                 omit_defaults=True):
    """Something done to the appliance rather than through it."""

    time: float = msgspec.field(default_factory=time.time)
    kind: AdminKind
    #: Who did it: an API key id, ``cli``, ``system``.
    actor: str = "system"
    #: Short facts (``{"key_id": "k_12"}``); never secrets or prompt text.
    detail: dict[str, str] = msgspec.field(default_factory=dict)


Record = RequestRecord | AdminEvent

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Record)


def encode_record(record: Record) -> bytes:
    return _encoder.encode(record)


def decode_record(data: bytes) -> Record:
    record: Record = _decoder.decode(data)
    return record


def admin_event(kind: AdminKind, actor: str = "system", **detail: str) -> AdminEvent:
    """``admin_event("key_revoked", actor="k_admin", key_id="k_12")``."""
    return AdminEvent(kind=kind, actor=actor, detail=dict(detail))


def keyed_hash(key: bytes, text: str) -> str:
    """HMAC-SHA256: an auditor holding the text (and the box) can prove it matches; a copy of
    the log alone cannot be used to guess short prompts by hashing candidates."""
    mac = _keyed(key).copy()
    mac.update(text.encode("utf-8"))
    return mac.hexdigest()


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    """An HMAC already keyed with ``key``: copying it is half the cost of ``hmac.digest``,
    which sets the key up again each time (two hashes per request record)."""
    return hmac.new(key, digestmod=hashlib.sha256)


def shape_content(mode: ContentMode, hash_key: bytes, prompt: str | None, response: str | None,
                  redacted_prompt: str | None = None,
                  redacted_response: str | None = None) -> Content:
    """The content part of a request record under ``mode``. ``redacted`` keeps the texts the
    classifier produced with placeholders; without them it falls back to a hash, so a missing
    redaction never leaks the original."""
    if mode == "none":
        return Content()
    if mode == "full":
        return Content(mode="full", prompt=prompt, response=response)
    if mode == "redacted" and (redacted_prompt is not None or redacted_response is not None):
        return Content(mode="redacted", prompt=redacted_prompt, response=redacted_response)
    return Content(mode="hashed",
                   prompt=None if prompt is None else keyed_hash(hash_key, prompt),
                   response=None if response is None else keyed_hash(hash_key, response))
