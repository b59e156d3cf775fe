"""Presence state behind a small interface: a person's status over all their devices.

Each node knows only its own connections: the hub reports, per person, the status over that
person's connections on this node (`update`), and the store answers with the person's status
over every node when it changed, which the hub then publishes. `MemoryPresence` is one node's
(its own devices are all of them); `enclave.bus.shared.RedisPresence` aggregates over the nodes
of a cluster and notices nodes that died (`sweep`), whose devices then count as gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from enclave.domain.ids import OrgId, UserId
from enclave.domain.shared import StoreUnavailable, Swept
from enclave.domain.signals import PresenceStatus

__all__ = ["FallbackPresence", "MemoryPresence", "PresenceStore", "Swept"]


class PresenceStore(Protocol):
    async def update(
        self, org_id: OrgId, user_id: UserId, status: PresenceStatus
    ) -> PresenceStatus | None:
        """Record `user_id`'s status over this node's connections (`OFFLINE`: none here);
        return their status over all nodes if that changed, else None."""
        ...

    async def statuses(self, user_ids: Sequence[UserId]) -> dict[UserId, PresenceStatus]:
        """The status of each person over all nodes (`OFFLINE` for unknown people)."""
        ...

    async def sweep(self) -> Swept:
        """Called every few seconds: keep this node counted as alive, take the entries of nodes
        that stopped doing so out of the count."""
        ...


class MemoryPresence:
    """One node: its connections are all there are."""

    def __init__(self) -> None:
        self._status: dict[UserId, PresenceStatus] = {}

    async def update(
        self, org_id: OrgId, user_id: UserId, status: PresenceStatus
    ) -> PresenceStatus | None:
        before = self._status.get(user_id, PresenceStatus.OFFLINE)
        if status is PresenceStatus.OFFLINE:
            self._status.pop(user_id, None)
        else:
            self._status[user_id] = status
        return None if status is before else status

    async def statuses(self, user_ids: Sequence[UserId]) -> dict[UserId, PresenceStatus]:
        return {uid: self._status.get(uid, PresenceStatus.OFFLINE) for uid in user_ids}

    async def sweep(self) -> Swept:
        return Swept()


class FallbackPresence:
    """The shared store while it answers; this node's own view while it does not (then only
    this node's devices count). When the store is back, `sweep` says so (`lost_mine`) and the
    hub reports every connection again."""

    def __init__(self, shared: PresenceStore) -> None:
        self.shared = shared
        self.local = MemoryPresence()
        self._degraded = False

    async def update(
        self, org_id: OrgId, user_id: UserId, status: PresenceStatus
    ) -> PresenceStatus | None:
        local = await self.local.update(org_id, user_id, status)
        try:
            return await self.shared.update(org_id, user_id, status)
        except StoreUnavailable:
            self._degraded = True
            return local

    async def statuses(self, user_ids: Sequence[UserId]) -> dict[UserId, PresenceStatus]:
        try:
            return await self.shared.statuses(user_ids)
        except StoreUnavailable:
            self._degraded = True
            return await self.local.statuses(user_ids)

    async def sweep(self) -> Swept:
        try:
            swept = await self.shared.sweep()
        except StoreUnavailable:
            self._degraded = True
            return Swept()
        if self._degraded:
            self._degraded = False
            return Swept(swept.changes, lost_mine=True)
        return swept
