"""The audit trail: one record per gateway call, so every read can be traced to the scan that asked.

``AuditSink.record`` is synchronous on purpose: a read must never wait on the audit store. A sink
backed by a database buffers records and flushes them on its own schedule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import msgspec

__all__ = ["AuditRecord", "AuditSink", "MemoryAuditSink"]


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True):
    time: datetime
    operation: str  # list | get | events | logs | node
    resource: str  # the kind
    namespace: str
    name: str
    requester: str  # the scan or diagnosis that asked
    bytes: int  # bytes the backend read for this call (response bodies, snapshot slices)
    outcome: str = "ok"  # ok | not-found | error: <reason>
    detail: str = ""  # e.g. "container=api previous=true tail=200"

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)


@runtime_checkable
class AuditSink(Protocol):
    def record(self, entry: AuditRecord) -> None: ...


class MemoryAuditSink:
    """Keeps records in a list: enough for a one-shot scan, and what tests inspect."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def record(self, entry: AuditRecord) -> None:
        self.records.append(entry)

    def operations(self) -> list[tuple[str, str]]:
        return [(r.operation, r.resource) for r in self.records]
