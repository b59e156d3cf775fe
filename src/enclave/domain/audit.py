"""Audit log entries and the bytes their chain hash covers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from enclave import codec

GENESIS = "0" * 64
"""The `prev_hash` of the first entry."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One security-relevant or administrative action. `seq` orders the whole log."""

    seq: int
    at: int
    action: str
    org_id: str | None = None
    actor_id: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    ip: str | None = None
    outcome: str = "success"
    details: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""

    def chained_bytes(self) -> bytes:
        """Canonical bytes of everything but `hash`; the chain MAC is taken over these."""
        return codec.dumps(
            [
                self.seq,
                self.at,
                self.action,
                self.org_id,
                self.actor_id,
                self.target_type,
                self.target_id,
                self.ip,
                self.outcome,
                codec.dumps_text(self.details),
                self.prev_hash,
            ]
        )
