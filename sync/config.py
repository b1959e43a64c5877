"""The ``[sync]`` section of the appliance's config: how the edge agent talks to central.

Stub created by the lead; the edge-sync work fills it in (intervals, backoff, outbox bound).
"""

from __future__ import annotations

import msgspec


class SyncConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Sync with central IT's control plane (only once the box is enrolled)."""

    enabled: bool = True
