"""Values and errors of state that nodes share (rate limits, lockouts, presence), whichever
store keeps it: this process's memory, or Redis in a cluster."""

from __future__ import annotations

from dataclasses import dataclass, field

from enclave.domain.signals import PresenceChanged

__all__ = ["Failures", "StoreUnavailable", "Swept"]


@dataclass(frozen=True)
class Failures:
    """Failures counted for one key inside its window, and when the last one happened."""

    count: int
    last_ms: int


class StoreUnavailable(Exception):
    """The shared store did not answer (in time): use this process's own state meanwhile."""


@dataclass(frozen=True)
class Swept:
    """What a presence sweep found: people whose status changed because a node died, and
    whether this node's own entries were lost (then the hub reports all its connections again)."""

    changes: list[PresenceChanged] = field(default_factory=list)
    lost_mine: bool = False
