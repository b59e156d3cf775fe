"""A background job as the queue holds it, and the states of its life (docs/architecture.md,
"The job path")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from enclave.domain.ids import OrgId

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "DEAD",
    "DONE",
    "FAILED",
    "FINISHED",
    "QUEUED",
    "RUNNING",
    "STATES",
    "Job",
]

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
DEAD = "dead"
CANCELLED = "cancelled"
STATES = (QUEUED, RUNNING, DONE, FAILED, DEAD, CANCELLED)
ACTIVE = frozenset({QUEUED, RUNNING})
FINISHED = frozenset({DONE, FAILED, DEAD, CANCELLED})


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str
    org_id: OrgId | None
    """None: an installation job (not one organization's)."""
    payload: dict[str, Any] | None
    """None only when the payload was sealed and its data key has been shredded."""
    sealed: bool
    state: str
    run_at: int
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: int | None
    key: str | None
    last_error: str | None
    created_at: int
    updated_at: int
    finished_at: int | None
