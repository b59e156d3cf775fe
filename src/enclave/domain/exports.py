"""An eDiscovery export as its organization's compliance officers see it, and the states of its
life (docs/compliance.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from enclave.domain.ids import OrgId, UserId

__all__ = ["DONE", "EXPIRED", "FAILED", "QUEUED", "RUNNING", "UNFINISHED", "ExportJob"]

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
EXPIRED = "expired"
UNFINISHED = (QUEUED, RUNNING)


@dataclass(frozen=True, slots=True)
class ExportJob:
    id: str
    org_id: OrgId
    requested_by: UserId | None
    """None: the operator at the CLI."""
    query: dict[str, Any]
    status: str
    """queued, running, done, failed or expired (files deleted)."""
    done: int
    total: int
    error: str | None
    created_at: int
    finished_at: int | None
    expires_at: int | None
