"""The ``[sync]`` section of the appliance's config: how the edge agent talks to central.

The agent runs only on an enrolled box (``appliance enroll``); these keys say how often each of
its jobs runs, how it backs off while central cannot be reached, and how much it keeps queued::

    [sync]
    policy_interval_seconds = 60      # pull the signed policy (TUF refresh)
    usage_interval_seconds = 30       # push usage rows from the outbox
    checkpoint_interval_seconds = 60  # push audit checkpoints
    heartbeat_interval_seconds = 60   # report status
    batch_size = 500                  # usage rows or checkpoint lines per request
    outbox_max_rows = 100000          # past this, the oldest rows become hourly aggregates
    backoff_initial_seconds = 1       # after a failure: doubled each time, with jitter...
    backoff_max_seconds = 300         # ...up to this
    timeout_seconds = 10              # one request to central
"""

from __future__ import annotations

from typing import Annotated

import msgspec

Interval = Annotated[float, msgspec.Meta(ge=0.1, le=86_400)]


class SyncConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Sync with central IT's control plane (only once the box is enrolled)."""

    #: ``false`` keeps an enrolled box standalone (its last known-good policy still applies).
    enabled: bool = True
    policy_interval_seconds: Interval = 60.0
    usage_interval_seconds: Interval = 30.0
    checkpoint_interval_seconds: Interval = 60.0
    heartbeat_interval_seconds: Interval = 60.0
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    #: Usage rows kept for central at most; when more are queued the oldest are merged into
    #: per-hour aggregates (never dropped). At least ``2 * batch_size``.
    outbox_max_rows: Annotated[int, msgspec.Meta(ge=2, le=100_000_000)] = 100_000
    backoff_initial_seconds: Annotated[float, msgspec.Meta(ge=0.1, le=3600)] = 1.0
    backoff_max_seconds: Annotated[float, msgspec.Meta(ge=0.1, le=86_400)] = 300.0
    timeout_seconds: Annotated[float, msgspec.Meta(ge=0.5, le=600)] = 10.0

    def __post_init__(self) -> None:
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            raise ValueError("`backoff_max_seconds`: must be >= `backoff_initial_seconds`")
        if self.outbox_max_rows < 2 * self.batch_size:
            raise ValueError("`outbox_max_rows`: must be at least twice `batch_size`")
