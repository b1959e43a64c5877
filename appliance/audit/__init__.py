"""The encrypted, tamper-evident audit log.

One record per request and per administrative event, encrypted with AES-256-GCM under a
per-segment data key (wrapped by the audit master key), hash-chained over the stored bytes and
checkpointed with the device's Ed25519 key. Modules, by concept:

    config       AuditConfig, the ``[audit]`` section
    records      RequestRecord, AdminEvent, content shaping
    crypto       key hierarchy: master key, data keys, record AEAD, signing key
    segments     the on-disk format and the hash chain
    checkpoints  signed checkpoints and the retention anchor
    recovery     repairing a crash's torn tail at open
    writer       AuditLog: group-committing writer thread
    verify       integrity, chain and signature checks naming the first problem
    query        decrypting search and export
    retention    purging whole segments behind a signed anchor
    rotate       re-wrapping data keys under a new master key
    routes       ``GET /admin/v1/audit``
    cli          ``appliance audit ...``
"""

from appliance.audit.config import AuditConfig
from appliance.audit.records import (
    AdminEvent,
    Content,
    Principal,
    Record,
    RequestRecord,
    admin_event,
)
from appliance.audit.verify import VerifyReport, verify
from appliance.audit.writer import AuditLocked, AuditLog, AuditUnavailable

__all__ = [
    "AdminEvent",
    "AuditConfig",
    "AuditLocked",
    "AuditLog",
    "AuditUnavailable",
    "Content",
    "Principal",
    "Record",
    "RequestRecord",
    "VerifyReport",
    "admin_event",
    "verify",
]
