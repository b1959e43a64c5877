"""Helpers shared by the audit tests: a small log written through the real writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.audit import AuditConfig, AuditLog, Principal, RequestRecord

#: Small segments and frequent checkpoints so a few hundred records exercise rotation.
SMALL = AuditConfig(checkpoint_every_records=10, segment_max_bytes=8192, content="full")


def request(i: int, prompt: str = "hello", tenant: str = "t1") -> RequestRecord:
    return RequestRecord(request_id=f"req-{i}", principal=Principal(tenant=tenant, key_id="k1"),
                         model_requested="gemma", model_served="gemma", zone="device",
                         sensitivity="internal" if i % 2 else "public",
                         action="allow" if i % 3 else "redact")


def write(data_dir: Path, count: int, config: AuditConfig = SMALL) -> list[int]:
    """Append ``count`` request records (plus the writer's start/stop events)."""
    log = AuditLog(data_dir, config)
    log.start()
    try:
        futures = [log.submit(request(i)) for i in range(count)]
        return [f.result() for f in futures]
    finally:
        log.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
