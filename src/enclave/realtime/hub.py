"""The node's hub: which connections follow which conversations, fan-out of committed events,
catch-up from the database, typing, presence, session revocation and access changes.

Fan-out encodes an event once and writes the same frame bytes to every subscriber. A connection
that sees a gap (an event whose seq is not its next) is caught up from the stored event log
(`realtime.catchup`); a new connection is resumed by `realtime.resume`. The hub is the owner of
its connections (`realtime.connection.ConnectionOwner`); every frame it sends is built by
`realtime.frames`.

In a cluster the hub's indexes decide which topics this node follows on the bus
(`realtime.follow`). Two things can pass a node by: the events committed between deciding to
follow a conversation and Redis confirming it, and everything while its bus was cut off (the
bus then calls `resync_all`). Both are caught up from the database: `resync` compares the
connections' cursors with each conversation's newest seq, so a missed event is recovered even
in a conversation where nothing else happens.

The hub owns no tasks of its own making: it is a resident of the node (`services.runtime.Node`),
which starts it with the spawn of the node's one task group, so its loops (session re-checks,
the presence sweep and reports, resyncs, catch-ups, sends in flight) run there, and the node
closes it (sockets first, then its work) before it releases its jobs. Work that belongs to one
connection and ends with it (a close frame being written, a catch-up read shared by the
connections waiting on it) stays with that connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from enclave.domain.events import Event, EventType
from enclave.domain.ids import ConversationId, OrgId, UserId
from enclave.domain.signals import (
    AccessChanged,
    Committed,
    PresenceChanged,
    PresenceStatus,
    SessionsRevoked,
    Signal,
    Typing,
)
from enclave.domain.topics import conversation_topic, org_topic, user_topic
from enclave.realtime import frames
from enclave.realtime.catchup import CatchUp
from enclave.realtime.connection import Connection
from enclave.realtime.follow import Followed
from enclave.realtime.frames import CloseCode
from enclave.realtime.presence import PresenceTracker
from enclave.services import auth, conversations, metrics, sync
from enclave.services.context import Context
from enclave.services.runtime import Spawn

log = logging.getLogger(__name__)

RECHECK_BATCH = 500
"""Sessions whose state one read transaction re-checks."""
RESYNC_BATCH = 500
"""Conversations (or people) whose newest seqs (memberships) one read transaction gets."""
SETTLE_SECONDS = 5.0
"""Longest wait for the bus to confirm a new socket's subscriptions."""
MEMBERSHIP_GRACE_SECONDS = 2.0
"""After a gap, how long a connection may lack a conversation its person belongs to (its
`member.joined` may still be on its way) before it is closed so that it resumes."""
K = TypeVar("K")


def _discard(index: dict[K, set[Connection]], key: K, conn: Connection) -> None:
    """Take `conn` out of `index[key]`, dropping the key once its set is empty."""
    conns = index.get(key)
    if conns is not None:
        conns.discard(conn)
        if not conns:
            del index[key]


async def _logged(work: Coroutine[Any, Any, None], name: str) -> None:
    try:
        await work
    except Exception:
        log.exception("%s failed", name)


class Hub:
    """All live connections of this process, and their owner (`ConnectionOwner`)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        bus = ctx.bus
        self._by_conv = Followed[ConversationId](bus, conversation_topic, self._conv_followed)
        self._by_user = Followed[UserId](bus, user_topic)
        self._by_org = Followed[OrgId](bus, org_topic)
        self.presence = PresenceTracker(ctx, self._conns_of, self._local_users, self.spawn)
        self._resyncing: set[ConversationId] = set()
        self._resync_running = False
        self._unfollow_gaps: Callable[[], None] | None = None
        self._spawn: Spawn | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._catch_up = CatchUp(ctx, self.spawn)
        self._unsubscribe: Callable[[], None] | None = None
        # Connections whose session and account must be re-read (one reader at a time, so a
        # later change is never overwritten by the answer of an earlier read).
        self._stale: set[Connection] = set()
        self._rechecking = False
        self._access_epoch = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, spawn: Spawn) -> None:
        """Start following the bus, with `spawn` (the node's task group) running the hub's
        work; `Node` calls this for its residents."""
        if self._spawn is not None:
            raise RuntimeError("the hub was started already")
        self._spawn = spawn
        self._unsubscribe = self._ctx.bus.subscribe(self.on_signal)
        self._unfollow_gaps = self._ctx.bus.on_gap(self.resync_all)
        self.spawn(self._recheck_sessions(), "hub: session re-checks")
        self.spawn(self.presence.sweep_forever(), "hub: presence sweep")

    async def _recheck_sessions(self) -> None:
        """Re-check every socket regularly: sessions that ended, and account changes, without a
        signal reaching this node (another process such as the CLI, expiry, a lost signal)."""
        interval = self._ctx.config.realtime.session_check_seconds
        while True:
            await asyncio.sleep(interval)
            self.recheck([c for cs in self._by_user.values() for c in cs])

    async def close(self) -> None:
        """Close every socket with 1001 (its client resumes elsewhere), report this node's
        people offline, then stop the hub's work; later work is dropped."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._unfollow_gaps is not None:
            self._unfollow_gaps()
        for conns in list(self._by_user.values()):
            for conn in list(conns):
                conn.drop(CloseCode.GOING_AWAY, "server shutting down")
        await self.presence.flush(timeout=2.0)  # the people of this node go offline now
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def spawn(self, coro: Coroutine[Any, Any, None], name: str = "hub work") -> None:
        """Run the hub's work in the node's task group (cancelled when the hub closes). An
        error is logged here: it must not stop the node's other work. Once the hub closed
        (handlers of closing sockets still unregister), new work is dropped."""
        if self._closed:
            coro.close()
            return
        if self._spawn is None:
            coro.close()
            raise RuntimeError("start the hub first (Node starts its residents)")
        task = self._spawn(_logged(coro, name), name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def connection_count(self) -> int:
        return sum(len(c) for c in self._by_user.values())

    # -- membership of connections --------------------------------------------------------------

    @property
    def access_epoch(self) -> int:
        """Counts the signals that changed what live connections may do (`AccessChanged`,
        `SessionsRevoked`); see `register`."""
        return self._access_epoch

    def sockets_of(self, conn: Connection) -> tuple[int, int]:
        """Open connections here of `conn`'s person, and of its session (`conn` not counted
        unless registered)."""
        mine = self._by_user.get(conn.user_id, ())
        return len(mine), sum(1 for c in mine if c.token_hash == conn.token_hash)

    def register(self, conn: Connection, *, since: int | None = None) -> None:
        """Add a live connection. `since` is `access_epoch` from before its session was
        checked: if a change was signalled meanwhile, the connection is re-checked, since the
        signal could not reach it yet."""
        conns = self._by_user.setdefault(conn.user_id, set())
        if conn not in conns:
            metrics.websocket_opened()
        conns.add(conn)
        self._by_org.setdefault(conn.user.org_id, set()).add(conn)
        if since is not None and since != self._access_epoch:
            self.recheck([conn])

    def unregister(self, conn: Connection) -> None:
        if conn in self._by_user.get(conn.user_id, ()):
            metrics.websocket_closed()
        for conv in list(conn.delivered):
            self.unsubscribe(conn, conv)
        self.unwatch(conn, list(conn.watching))
        _discard(self._by_user, conn.user_id, conn)
        _discard(self._by_org, conn.user.org_id, conn)
        self.presence_maybe_changed(conn)

    async def settle(self, conn: Connection) -> None:
        """Wait until signals for this connection's person and organization reach this node
        (in a cluster: until Redis confirmed the subscriptions), so that nothing committed
        after its resume reads the database can pass it by."""
        try:
            async with asyncio.timeout(SETTLE_SECONDS):
                await self._by_user.settled(conn.user_id)
                await self._by_org.settled(conn.user.org_id)
        except TimeoutError:  # never hold a socket for ever; the next re-check covers it
            log.warning("the bus did not confirm a subscription in time")

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
            case AccessChanged():
                self._on_access_changed(signal)

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
        frame = frames.event(event)
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
        frame = frames.typing(signal.conversation_id, signal.user_id, signal.thread_root_id)
        for conn in list(conns):
            if conn.user_id != signal.user_id:
                conn.send(frame)

    def _on_presence(self, signal: PresenceChanged) -> None:
        self.presence.on_signal(signal)

    def _on_revoked(self, signal: SessionsRevoked) -> None:
        self._access_epoch += 1
        for conn in list(self._by_user.get(signal.user_id, ())):
            if conn.token_hash == signal.keep:
                continue
            if signal.token_hash is None or conn.token_hash == signal.token_hash:
                conn.drop(CloseCode.SESSION_REVOKED, "session ended")

    # -- access changes -------------------------------------------------------------------------

    def _on_access_changed(self, signal: AccessChanged) -> None:
        self._access_epoch += 1
        if signal.user_id is not None:
            conns = list(self._by_user.get(signal.user_id, ()))
        else:
            conns = list(self._by_org.get(signal.org_id, ()))
        self.recheck(conns)

    def recheck(self, conns: list[Connection]) -> None:
        """Re-read the session and account of these connections and apply what changed."""
        self._stale.update(c for c in conns if c.alive)
        if self._stale and not self._rechecking:
            self._rechecking = True
            self.spawn(self._run_rechecks())

    async def _run_rechecks(self) -> None:
        delay = 0.5
        try:
            while self._stale:
                batch = list(self._stale)[:RECHECK_BATCH]
                self._stale.difference_update(batch)
                batch = [c for c in batch if c.alive]
                if not batch:
                    continue
                try:
                    states = await auth.live_states(self._ctx, list({c.token_hash for c in batch}))
                except Exception:
                    # Without the database these sockets can do nothing anyway: keep them and
                    # try again, rather than have every client reconnect into the same outage.
                    log.exception("re-checking sessions failed; trying again later")
                    self._stale.update(batch)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._ctx.config.realtime.session_check_seconds)
                    continue
                delay = 0.5
                for conn in batch:
                    await self._apply_state(conn, states.get(conn.token_hash))
        finally:
            self._rechecking = False

    async def _apply_state(self, conn: Connection, state: auth.LiveState | None) -> None:
        """Close a connection whose session ended or whose account must finish a set-up step
        first (new terms of use, required MFA); otherwise take the account as it is now."""
        if not conn.alive:
            return
        if state is None:
            conn.drop(CloseCode.SESSION_REVOKED, "session ended")
            return
        if state.set_up_step is not None:
            conn.drop(CloseCode.SET_UP_REQUIRED, state.set_up_step)
            return
        before, conn.user = conn.user, state.user
        if (before.role, before.department_id) == (state.user.role, state.user.department_id):
            return
        if conn.watching:
            # A guest, say, may no longer see everyone whose presence this socket watches. The
            # watches are cut before the client hears of the change, so that no presence it may
            # no longer see follows `account.updated`.
            try:
                visible = set(await sync.same_org_users(self._ctx, conn.user, list(conn.watching)))
            except Exception:
                log.exception("re-checking presence watches failed; dropping them")
                visible = set()
            self.unwatch(conn, [u for u in conn.watching if u not in visible])
        conn.send(frames.account_updated(state.user))

    # -- catch-up -------------------------------------------------------------------------------

    def catch_up(self, conn: Connection, conv: ConversationId) -> None:
        """Fill a gap of `conn` in `conv` from the stored log (coalesced while one runs)."""
        self._catch_up.request(conn, conv)

    async def replay(self, conn: Connection, convs: list[ConversationId]) -> None:
        """Send a resuming `conn` what it missed in `convs` (`realtime.resume`)."""
        await self._catch_up.replay(conn, convs)

    # -- typing and presence --------------------------------------------------------------------

    async def typing(
        self, conn: Connection, conv: ConversationId, thread_root_id: str | None
    ) -> None:
        """Tell the conversation someone is typing: only a member who may post there (a
        read-only member or a non-moderator in an announcement channel types nothing)."""
        if (
            conv in conn.delivered
            and conn.allow_typing(conv)
            and await conversations.may_post(self._ctx, conn.user, conv)
        ):
            await self._ctx.bus.publish(Typing(conv, conn.user_id, thread_root_id))

    async def presence_states(self, user_ids: list[UserId]) -> dict[UserId, PresenceStatus]:
        """The status of each of these people over all their devices (watch them first)."""
        return await self.presence.states(user_ids)

    def watch(self, conn: Connection, user_ids: list[UserId]) -> None:
        self.presence.watch(conn, user_ids)

    def unwatch(self, conn: Connection, user_ids: list[UserId]) -> None:
        self.presence.unwatch(conn, user_ids)

    def presence_maybe_changed(self, conn: Connection) -> None:
        """A connection opened, closed or changed its status: report the person's presence."""
        self.presence.changed(conn.user.org_id, conn.user_id)

    def _conns_of(self, user_id: UserId) -> set[Connection]:
        return self._by_user.get(user_id, set())

    def _local_users(self) -> list[tuple[OrgId, UserId]]:
        return [(next(iter(cs)).user.org_id, uid) for uid, cs in self._by_user.items() if cs]

    # -- what the bus may have missed -----------------------------------------------------------

    def _conv_followed(self, conv: ConversationId, done: Awaitable[None]) -> None:
        self.spawn(self._after_followed(conv, done))

    async def _after_followed(self, conv: ConversationId, done: Awaitable[None]) -> None:
        await done
        self.resync([conv])

    def resync(self, convs: list[ConversationId]) -> None:
        """Catch up every connection here that is behind in these conversations, by their
        newest seq in the database (one read per batch, whatever the number of connections)."""
        self._resyncing.update(convs)
        if self._resyncing and not self._resync_running:
            self._resync_running = True
            self.spawn(self._run_resync())

    async def _run_resync(self) -> None:
        try:
            while self._resyncing:
                chunk = list(self._resyncing)[:RESYNC_BATCH]
                self._resyncing.difference_update(chunk)
                batch = [c for c in chunk if c in self._by_conv]
                if not batch:
                    continue
                try:
                    newest = await sync.last_seqs(self._ctx, batch)
                except Exception:
                    log.exception("resync failed; dropping the connections so that they resume")
                    for conv in batch:
                        for conn in list(self._by_conv.get(conv, ())):
                            conn.drop(CloseCode.INTERNAL, "try again")
                    continue
                for conv, last in newest.items():
                    for conn in list(self._by_conv.get(conv, ())):
                        if conn.delivered.get(conv, last) < last:
                            conn.gap(conv)
        finally:
            self._resync_running = False

    def resync_all(self) -> None:
        """The bus may have missed anything (it reconnected, or another node could not
        publish): catch every connection up, re-check sessions, memberships and presence."""
        self.resync(list(self._by_conv))
        conns = [c for cs in self._by_user.values() for c in cs]
        self.recheck(conns)
        self.spawn(self._check_memberships(list(self._by_user)))
        self.spawn(self.presence.refresh())

    async def _check_memberships(self, users: list[UserId]) -> None:
        """Close connections that miss a conversation their person joined meanwhile (its
        `member.joined` was missed): they resume, and `ready` lists it under `cursors`."""
        suspects: list[tuple[Connection, ConversationId]] = []
        for start in range(0, len(users), RESYNC_BATCH):
            batch = users[start : start + RESYNC_BATCH]
            try:
                found = await sync.memberships(self._ctx, batch)
            except Exception:
                log.exception("re-checking memberships failed; the connections resume")
                for uid in batch:
                    for conn in list(self._by_user.get(uid, ())):
                        conn.drop(CloseCode.INTERNAL, "try again")
                continue
            for uid, convs in found.items():
                for conn in list(self._by_user.get(uid, ())):
                    suspects += [(conn, c) for c in convs if c not in conn.delivered]
        if not suspects:
            return
        await asyncio.sleep(MEMBERSHIP_GRACE_SECONDS)
        for conn, conv in suspects:
            if conn.alive and conv not in conn.delivered:
                conn.drop(CloseCode.GOING_AWAY, "your conversations changed: resume")
