"""The audit log: every key, list, policy and configuration change, append-only and
hash-chained."""

from hashguard.audit.log import (
    AuditError,
    AuditEvent,
    append,
    events,
    head,
    last_details,
    verify,
)

__all__ = ["AuditError", "AuditEvent", "append", "events", "head", "last_details", "verify"]
