"""The node's hub: which connections follow which conversations, fan-out of committed events,
catch-up from the database, typing, presence and session revocation.

Fan-out encodes an event once and writes the same frame bytes to every subscriber. A connection
that sees a gap (an event whose seq is not its next) is caught up from the stored event log;
catch-up reads for the same (conversation, cursor) are shared between connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from enclave.domain.events import Event, EventType
from enclave.domain.ids import ConversationId, UserId
from enclave.domain.signals import (
    Committed,
    PresenceChanged,
    PresenceStatus,
    SessionsRevoked,
    Signal,
    Typing,
)
from enclave.realtime.connection import CloseCode, Connection
from enclave.realtime.frames import event_frame, ws_frame
from enclave.services import accounts, metrics, sync
from enclave.services.context import Context

log = logging.getLogger(__name__)

CATCH_UP_PAGE = 500
K = TypeVar("K")
Fetched = list[tuple[Event, bytes]]


def _discard(index: dict[K, set[Connection]], key: K, conn: Connection) -> None:
    """Take `conn` out of `index[key]`, dropping the key once its set is empty."""
    conns = index.get(key)
    if conns is not None:
        conns.discard(conn)
        if not conns:
            del index[key]


class Hub:
    """All live connections of this process."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._by_conv: dict[ConversationId, set[Connection]] = {}
        self._by_user: dict[UserId, set[Connection]] = {}
        self._watchers: dict[UserId, set[Connection]] = {}
        self._presence: dict[UserId, PresenceStatus] = {}
        self._fetches: dict[tuple[ConversationId, int], asyncio.Future[Fetched]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._unsubscribe = self._ctx.bus.subscribe(self.on_signal)
        self.spawn(self._recheck_sessions())

    async def _recheck_sessions(self) -> None:
        """Close sockets whose session ended without a signal reaching this node."""
        interval = self._ctx.config.realtime.session_check_seconds
        while True:
            await asyncio.sleep(interval)
            conns = [c for cs in self._by_user.values() for c in cs]
            if not conns:
                continue
            try:
                valid = await accounts.live_sessions(self._ctx, list({c.token_hash for c in conns}))
            except Exception:
                log.exception("session re-check failed; trying again later")
                continue
            for conn in conns:
                if conn.token_hash not in valid:
                    conn.drop(CloseCode.SESSION_REVOKED, "session ended")

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for conns in list(self._by_user.values()):
            for conn in list(conns):
                conn.drop(CloseCode.GOING_AWAY, "server shutting down")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run background work owned by the hub (cancelled when it closes)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def connection_count(self) -> int:
        return sum(len(c) for c in self._by_user.values())

    # -- membership of connections --------------------------------------------------------------

    def register(self, conn: Connection) -> None:
        conns = self._by_user.setdefault(conn.user_id, set())
        if conn not in conns:
            metrics.websocket_opened()
        conns.add(conn)

    def unregister(self, conn: Connection) -> None:
        if conn in self._by_user.get(conn.user_id, ()):
            metrics.websocket_closed()
        for conv in list(conn.delivered):
            self.unsubscribe(conn, conv)
        self.unwatch(conn, list(conn.watching))
        _discard(self._by_user, conn.user_id, conn)
        self.presence_maybe_changed(conn)

    def subscribe(self, conn: Connection, conv: ConversationId, delivered: int) -> None:
        if conv in conn.delivered or not conn.alive:
            return
        conn.delivered[conv] = delivered
        self._by_conv.setdefault(conv, set()).add(conn)

    def unsubscribe(self, conn: Connection, conv: ConversationId) -> None:
        conn.delivered.pop(conv, None)
        conn.catching.pop(conv, None)
        _discard(self._by_conv, conv, conn)

    # -- signals from the bus -------------------------------------------------------------------

    def on_signal(self, signal: Signal) -> None:
        match signal:
            case Committed(events=events):
                for event in events:
                    self._on_event(event)
            case Typing():
                self._on_typing(signal)
            case PresenceChanged():
                self._on_presence(signal)
            case SessionsRevoked():
                self._on_revoked(signal)

    def _on_event(self, event: Event) -> None:
        conv = event.conversation_id
        if event.type is EventType.MEMBER_JOINED:
            self._follow(str(event.data.get("user_id")), event)
        elif event.type is EventType.CONVERSATION_CREATED:
            for uid in event.data.get("member_ids", []):
                self._follow(str(uid), event)
        conns = self._by_conv.get(conv)
        if not conns:
            return
        frame = event_frame(event)
        for conn in list(conns):
            conn.offer(event, frame)

    def _follow(self, user_id: str, event: Event) -> None:
        """A person joined: their connections here start following from this event on."""
        for conn in list(self._by_user.get(UserId(user_id), ())):
            self.subscribe(conn, event.conversation_id, event.seq - 1)

    def _on_typing(self, signal: Typing) -> None:
        conns = self._by_conv.get(signal.conversation_id)
        if not conns:
            return
        frame = ws_frame(
            {
                "type": "typing",
                "conversation_id": signal.conversation_id,
                "user_id": signal.user_id,
                "thread_root_id": signal.thread_root_id,
            }
        )
        for conn in list(conns):
            if conn.user_id != signal.user_id:
                conn.send(frame)

    def _on_presence(self, signal: PresenceChanged) -> None:
        self._presence[signal.user_id] = signal.status
        if signal.status is PresenceStatus.OFFLINE:
            self._presence.pop(signal.user_id, None)
        watchers = self._watchers.get(signal.user_id)
        if not watchers:
            return
        frame = ws_frame(
            {"type": "presence", "user_id": signal.user_id, "status": signal.status.value}
        )
        for conn in list(watchers):
            if conn.user.org_id == signal.org_id:
                conn.send(frame)

    def _on_revoked(self, signal: SessionsRevoked) -> None:
        for conn in list(self._by_user.get(signal.user_id, ())):
            if conn.token_hash == signal.keep:
                continue
            if signal.token_hash is None or conn.token_hash == signal.token_hash:
                conn.drop(CloseCode.SESSION_REVOKED, "session ended")

    # -- catch-up -------------------------------------------------------------------------------

    def catch_up(self, conn: Connection, conv: ConversationId) -> None:
        """Fill a gap of `conn` in `conv` from the stored log (coalesced while one runs)."""
        if conv in conn.catching:
            conn.catching[conv] = True  # run once more when the current pass ends
            return
        conn.catching[conv] = False
        self.spawn(self.run_catch_up(conn, conv))

    async def run_catch_up(self, conn: Connection, conv: ConversationId) -> None:
        """Send `conn` the stored events of `conv` after its cursor until it is current."""
        check_membership = False
        try:
            while conn.alive and conv in conn.delivered:
                conn.catching[conv] = False
                after = conn.delivered[conv]
                fetched = await self._fetch(conv, after)
                if conv not in conn.delivered:
                    return
                if fetched and fetched[0][0].seq != after + 1:
                    # The log no longer holds what this cursor needs: say so, never skip.
                    conn.delivered[conv] = fetched[0][0].seq - 1
                    conn.send_json(
                        {"type": "resync", "conversation_id": conv, "seq": conn.delivered[conv]}
                    )
                for event, frame in fetched:
                    conn.offer(event, frame, replay=True)
                    if event.type is EventType.MEMBER_LEFT and event.data.get("user_id") == (
                        conn.user_id
                    ):
                        check_membership = True
                if len(fetched) < CATCH_UP_PAGE and not conn.catching.get(conv):
                    break
            recheck = check_membership and conn.alive and conv in conn.delivered
            if recheck and not await sync.is_member(self._ctx, conn.user_id, conv):
                self.unsubscribe(conn, conv)
                conn.send_json({"type": "conversation.removed", "conversation_id": conv})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("catch-up failed; dropping the connection so that it resumes")
            conn.drop(CloseCode.INTERNAL, "try again")
        finally:
            conn.catching.pop(conv, None)

    async def _fetch(self, conv: ConversationId, after: int) -> Fetched:
        key = (conv, after)
        fut = self._fetches.get(key)
        if fut is None:
            fut = asyncio.ensure_future(self._load(conv, after))
            self._fetches[key] = fut
            fut.add_done_callback(lambda _f: self._fetches.pop(key, None))
        return await asyncio.shield(fut)

    async def _load(self, conv: ConversationId, after: int) -> Fetched:
        events = await sync.events_for_member(self._ctx, conv, after, CATCH_UP_PAGE)
        return [(e, event_frame(e)) for e in events]

    # -- typing and presence --------------------------------------------------------------------

    async def typing(
        self, conn: Connection, conv: ConversationId, thread_root_id: str | None
    ) -> None:
        if conv in conn.delivered and conn.allow_typing(conv):
            await self._ctx.bus.publish(Typing(conv, conn.user_id, thread_root_id))

    def presence_of(self, user_id: UserId) -> PresenceStatus:
        return self._presence.get(user_id, PresenceStatus.OFFLINE)

    def watch(self, conn: Connection, user_ids: list[UserId]) -> None:
        for uid in user_ids:
            conn.watching.add(uid)
            self._watchers.setdefault(uid, set()).add(conn)

    def unwatch(self, conn: Connection, user_ids: list[UserId]) -> None:
        for uid in user_ids:
            conn.watching.discard(uid)
            _discard(self._watchers, uid, conn)

    def presence_maybe_changed(self, conn: Connection) -> None:
        """Recompute a person's presence over their devices; publish it if it changed."""
        conns = [c for c in self._by_user.get(conn.user_id, ()) if c.alive]
        if not conns:
            status = PresenceStatus.OFFLINE
        elif any(c.status is PresenceStatus.ONLINE for c in conns):
            status = PresenceStatus.ONLINE
        else:
            status = PresenceStatus.AWAY
        if status is self.presence_of(conn.user_id):
            return
        # Recorded now so that a burst of changes publishes each transition once.
        if status is PresenceStatus.OFFLINE:
            self._presence.pop(conn.user_id, None)
        else:
            self._presence[conn.user_id] = status
        self.spawn(self._ctx.bus.publish(PresenceChanged(conn.user.org_id, conn.user_id, status)))
