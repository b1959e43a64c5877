"""The ``[audit]`` section of ``appliance.toml``.

Defaults favour proof over speed: ``strict`` durability (a request is not answered until its
record is on disk) and ``hashed`` content (a keyed hash lets an auditor confirm a prompt they hold
without the log ever holding it).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Durability = Literal["strict", "relaxed"]
ContentMode = Literal["none", "hashed", "redacted", "full"]


class AuditConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """How the audit log is written, checkpointed and kept."""

    #: ``strict``: ``append`` returns once the record is fsynced (concurrent requests share one
    #: fsync). ``relaxed``: ``append`` returns once written; fsync every ``fsync_interval_ms``.
    durability: Durability = "strict"
    fsync_interval_ms: Annotated[int, msgspec.Meta(ge=1, le=60_000)] = 200
    #: A signed checkpoint of the chain head after this many records...
    checkpoint_every_records: Annotated[int, msgspec.Meta(ge=1)] = 1000
    #: ...or this many seconds, whichever comes first (only when records were added).
    checkpoint_every_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    #: What of the prompt and response a request record keeps: ``hashed`` (a keyed hash),
    #: ``redacted`` (the texts with identifiers as typed placeholders, ``[PERSON_1]``; never
    #: the values) or ``full``.
    content: ContentMode = "hashed"
    #: Whole segments older than this are purged by the running daemon's writer (at start and
    #: every ``retention_check_seconds``) or, daemon stopped, by ``appliance audit purge``;
    #: 0 keeps forever.
    retention_days: Annotated[int, msgspec.Meta(ge=0)] = 0
    retention_check_seconds: Annotated[float, msgspec.Meta(gt=0)] = 3600.0
    #: A segment is closed and a new one (with a fresh data key) begun past this size.
    segment_max_bytes: Annotated[int, msgspec.Meta(ge=4096)] = 64 * 1024 * 1024
