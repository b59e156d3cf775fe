"""Presence for the hub: who watches whom on this node, and each person's status over all
their devices on all nodes.

The hub reports a person whenever their connections here change (`changed`); one worker then
tells the presence store (`ctx.presence`) the person's status over this node's connections and
publishes `PresenceChanged` if the store says their status over every node changed. Because
the worker handles one person at a time and reads their connections when it runs, a burst of
changes publishes each transition once and never out of order. `sweep_forever` keeps this node
counted as alive in a shared store and publishes the changes of nodes that died.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from enclave.domain.ids import OrgId, UserId
from enclave.domain.signals import PresenceChanged, PresenceStatus
from enclave.domain.topics import presence_topic
from enclave.realtime import frames
from enclave.realtime.connection import Connection
from enclave.realtime.follow import Followed
from enclave.services.context import Context

__all__ = ["SWEEP_SECONDS", "PresenceTracker"]

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0
"""How often a node renews its liveness in the presence store (its entries expire after 15 s
without renewal: see `enclave.bus.shared.RedisPresence`)."""


class PresenceTracker:
    """The presence half of the hub. `conns_of(user)` gives the person's live connections on
    this node; `spawn` runs background work owned by the hub."""

    def __init__(
        self,
        ctx: Context,
        conns_of: Callable[[UserId], Iterable[Connection]],
        local_users: Callable[[], Iterable[tuple[OrgId, UserId]]],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self._ctx = ctx
        self._conns_of = conns_of
        self._local_users = local_users
        self._spawn = spawn
        self.watchers: Followed[UserId] = Followed(ctx.bus, presence_topic)
        self._known: dict[UserId, PresenceStatus] = {}  # last status shown to watchers here
        self._dirty: dict[UserId, OrgId] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    # -- watching ---------------------------------------------------------------------------------

    def watch(self, conn: Connection, user_ids: list[UserId]) -> None:
        for uid in user_ids:
            conn.watching.add(uid)
            self.watchers.setdefault(uid, set()).add(conn)

    def unwatch(self, conn: Connection, user_ids: list[UserId]) -> None:
        for uid in user_ids:
            conn.watching.discard(uid)
            conns = self.watchers.get(uid)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self.watchers[uid]
                    self._known.pop(uid, None)

    async def states(self, user_ids: list[UserId]) -> dict[UserId, PresenceStatus]:
        """The status of each of these (watched) people, once their changes reach this node."""
        for uid in user_ids:
            await self.watchers.settled(uid)
        found = await self._ctx.presence.statuses(user_ids)
        for uid, status in found.items():
            if uid in self.watchers:
                self._known[uid] = status
        return found

    def on_signal(self, signal: PresenceChanged) -> None:
        """Show a change to the watchers here (of the same organization)."""
        watchers = self.watchers.get(signal.user_id)
        if not watchers:
            return
        self._known[signal.user_id] = signal.status
        frame = frames.presence(signal.user_id, signal.status)
        for conn in list(watchers):
            if conn.user.org_id == signal.org_id:
                conn.send(frame)

    # -- reporting this node's connections --------------------------------------------------------

    def changed(self, org_id: OrgId, user_id: UserId) -> None:
        """A person's connections here changed (opened, closed, online/away)."""
        self._dirty[user_id] = org_id
        if self._idle.is_set():
            self._idle.clear()
            self._spawn(self._report())

    def _local_status(self, user_id: UserId) -> PresenceStatus:
        conns = [c for c in self._conns_of(user_id) if c.alive]
        if not conns:
            return PresenceStatus.OFFLINE
        if any(c.status is PresenceStatus.ONLINE for c in conns):
            return PresenceStatus.ONLINE
        return PresenceStatus.AWAY

    async def _report(self) -> None:
        try:
            while self._dirty:
                user_id = next(iter(self._dirty))
                org_id = self._dirty.pop(user_id)
                status = self._local_status(user_id)
                try:
                    now = await self._ctx.presence.update(org_id, user_id, status)
                except Exception:
                    log.exception("presence update failed")
                    continue
                if now is not None:
                    await self._ctx.bus.publish(PresenceChanged(org_id, user_id, now))
        finally:
            self._idle.set()

    async def flush(self, timeout: float) -> None:
        """Wait (up to `timeout`) until every reported change reached the store: on shutdown,
        so that this node's people go offline at once rather than when its entries expire."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            log.warning("presence: shutting down with changes not yet reported")

    # -- the cluster ------------------------------------------------------------------------------

    async def sweep_forever(self) -> None:
        """Renew this node's liveness; publish the changes of people on nodes that died."""
        while True:
            try:
                swept = await self._ctx.presence.sweep()
            except Exception:
                log.exception("presence sweep failed")
            else:
                for change in swept.changes:
                    await self._ctx.bus.publish(change)
                if swept.lost_mine:
                    self.report_all()
            await asyncio.sleep(SWEEP_SECONDS)

    def report_all(self) -> None:
        """Report every person connected here again (the store lost or missed them)."""
        for org_id, user_id in self._local_users():
            self.changed(org_id, user_id)

    async def refresh(self) -> None:
        """After a gap on the bus: report this node's people again, and show watchers here the
        changes they missed."""
        self.report_all()
        watched = list(self.watchers)
        for start in range(0, len(watched), 500):
            batch = watched[start : start + 500]
            try:
                found = await self._ctx.presence.statuses(batch)
            except Exception:
                log.exception("presence refresh failed")
                return
            for uid, status in found.items():
                conns = self.watchers.get(uid)
                if conns and self._known.get(uid, PresenceStatus.OFFLINE) is not status:
                    org_id = next(iter(conns)).user.org_id
                    self.on_signal(PresenceChanged(org_id, uid, status))
