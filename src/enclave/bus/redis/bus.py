"""`RedisBus`: signals between the nodes of a cluster over Redis pub/sub, with the interface of
the in-process bus, through one node's `RedisLink` (`enclave.bus.redis.link`).

How the bus keeps the delivery guarantees of docs/architecture.md across nodes:

- **Local first.** `publish` hands the signal to this node's subscribers at once, in publish
  order, exactly like the in-process bus; only then is it queued for Redis. One task publishes
  the queue in order, in pipelines, so other nodes also see one node's signals in its order.
- **Only what is needed.** A node subscribes to the topics (`enclave.domain.topics`) that its
  connections follow, and a `Committed` goes to its conversation's channel (and, for people
  joining, to theirs). Each signal is encoded once per channel set, whatever the number of nodes.
- **Losing Redis loses nothing.** Every event is in the database; a node that may have missed
  signals (its subscription was down, or a peer could not publish) calls its gap handlers, and
  the hub catches its connections up from the database. A node whose publishes failed says so
  on the `all` channel once Redis is back, so the others catch up too. While Redis is away the
  node keeps serving: writes commit, its own connections get its own events, and shared state
  falls back to this process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio.client import PubSub

from enclave.bus import wire
from enclave.bus.memory import READY, Subscriber
from enclave.bus.redis.link import RedisLink, RedisUnavailable
from enclave.domain.signals import Committed, Signal
from enclave.domain.topics import EVERYONE, Topic, split_committed, topics_of

__all__ = ["RedisBus"]

log = logging.getLogger(__name__)

_GAP = b"gap"


async def _wait(event: asyncio.Event, timeout: float | None) -> None:
    """Wait for `event` at most `timeout` seconds. (Not `wait_for`: on Python 3.11 it can
    swallow a cancellation that meets the event being set, and a task would never stop.)"""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


class RedisBus:
    """The bus of a cluster node; see the module docstring. `node_id` tells this node's own
    messages apart when Redis hands them back."""

    def __init__(
        self,
        link: RedisLink,
        node_id: str,
        *,
        ping_seconds: float = 2.0,
        max_queued: int = 10_000,
    ) -> None:
        self._link = link
        self._origin = node_id.encode() + b"|"
        self._sent = 0  # numbers this node's messages, so receivers drop repeats
        self._seen: dict[bytes, int] = {}  # origin -> number of its last message received
        self._ping_seconds = ping_seconds
        self._max_queued = max_queued
        self._subscribers: list[Subscriber] = []
        self._gap_handlers: list[Callable[[], None]] = []
        self._counts: Counter[bytes] = Counter()  # followed channels, by how often followed
        self._live: set[bytes] = set()  # channels whose subscription Redis confirmed
        self._unconfirmed: Counter[bytes] = Counter()  # SUBSCRIBEs sent, not yet confirmed
        # channel -> the `follow` results waiting for it, each with the channels it still awaits
        self._waiting: dict[bytes, list[tuple[set[bytes], asyncio.Future[None]]]] = {}
        self._commands: deque[tuple[str, list[bytes]]] = deque()
        self._command_ready = asyncio.Event()
        self._outbox: deque[tuple[list[bytes], bytes]] = deque()
        self._outbox_ready = asyncio.Event()
        self._missed = False  # publishes were lost: the other nodes must be told
        self._connected = False
        self._last_pong = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._established = asyncio.Event()
        self._everyone = link.channel(EVERYONE)
        self._closing = False

    @property
    def connected(self) -> bool:
        """True while this node's subscription is in place."""
        return self._connected

    # -- the interface of every bus ---------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def on_gap(self, handler: Callable[[], None]) -> Callable[[], None]:
        """`handler` runs whenever this node may have missed signals: each time its
        subscription is (re)established, and when another node could not publish."""
        self._gap_handlers.append(handler)
        return lambda: self._gap_handlers.remove(handler)

    async def publish(self, signal: Signal) -> None:
        self._deliver(signal)
        parts = split_committed(signal) if isinstance(signal, Committed) else [signal]
        for part in parts:
            channels = [self._link.channel(t) for t in topics_of(part)]
            self._outbox.append((channels, self._envelope(wire.encode(part))))
        while len(self._outbox) > self._max_queued:
            self._outbox.popleft()  # Redis is far behind: the peers catch up from the database
            self._missed = True
        self._outbox_ready.set()

    def follow(self, topics: Iterable[Topic]) -> Awaitable[None]:
        """Receive the signals of `topics` (counted: as often followed as unfollowed). The
        result is done once Redis confirmed the subscription, or at once without Redis (the
        gap handlers run when it is back)."""
        channels = [self._link.channel(t) for t in topics]
        new = []
        for ch in channels:
            self._counts[ch] += 1
            if self._counts[ch] == 1:
                new.append(ch)
        if new:
            self._commands.append(("sub", new))
            self._command_ready.set()
        pending = {ch for ch in channels if ch not in self._live}
        if not pending or not self._connected:
            return READY
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for ch in pending:
            self._waiting.setdefault(ch, []).append((pending, fut))
        return fut

    def unfollow(self, topics: Iterable[Topic]) -> None:
        gone = []
        for topic in topics:
            ch = self._link.channel(topic)
            if self._counts[ch] <= 0:
                continue
            self._counts[ch] -= 1
            if self._counts[ch] == 0:
                del self._counts[ch]
                self._live.discard(ch)
                self._settle(ch)  # nobody waits for a subscription that will not be made
                gone.append(ch)
        if gone:
            self._commands.append(("unsub", gone))
            self._command_ready.set()

    async def start(self, wait: float | None = None) -> None:
        """Connect in the background; wait up to `wait` seconds (default: the link's timeout)
        for the subscription, but start anyway without Redis."""
        self._tasks = [
            asyncio.ensure_future(self._subscription()),
            asyncio.ensure_future(self._publisher()),
        ]
        await _wait(self._established, wait or self._link.timeout)

    async def close(self) -> None:
        """Publish what is queued (briefly), then stop."""
        deadline = time.monotonic() + self._link.timeout
        while self._outbox and self._link.up and time.monotonic() < deadline:
            self._outbox_ready.set()
            await asyncio.sleep(0.01)
        self._closing = True
        self._outbox_ready.set()
        self._command_ready.set()
        for task in self._tasks:
            task.cancel()
        # Bounded: a task that missed its cancellation must not hold up the shutdown.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2 * self._link.timeout + 1)
        self._tasks = []
        self._disconnected()

    # -- receiving --------------------------------------------------------------------------------

    def _deliver(self, signal: Signal) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(signal)
            except Exception:  # one broken subscriber must not stop the others
                log.exception("bus subscriber failed")

    def _gap(self) -> None:
        for handler in list(self._gap_handlers):
            try:
                handler()
            except Exception:
                log.exception("bus gap handler failed")

    def _envelope(self, body: bytes) -> bytes:
        self._sent += 1
        return b"%s%d|%s" % (self._origin, self._sent, body)

    def _received(self, channel: bytes, data: bytes) -> None:
        if data.startswith(self._origin):
            return  # our own: delivered locally when published
        origin, sep1, rest = data.partition(b"|")
        number, sep2, body = rest.partition(b"|")
        if not (sep1 and sep2 and number.isdigit()):
            log.warning("ignoring a malformed bus message on %r", channel)
            return
        # A message sent to several channels this node follows arrives once per channel, and
        # Redis hands one connection its messages in publish order: a repeat is never newer.
        n = int(number)
        if n <= self._seen.get(origin, 0):
            return
        self._seen[origin] = n
        if body == _GAP:
            self._gap()
            return
        try:
            signal = wire.decode(body)
        except wire.WireError:
            # A newer node's signal during a rolling upgrade: the database has what matters.
            log.warning("ignoring a bus message this version cannot read on %r", channel)
            return
        self._deliver(signal)

    def _confirmed(self, channel: bytes) -> None:
        if self._unconfirmed[channel] > 1:
            self._unconfirmed[channel] -= 1
            return  # a later SUBSCRIBE of the same channel is still on its way
        self._unconfirmed.pop(channel, None)
        if channel in self._counts or channel == self._everyone:
            self._live.add(channel)
        self._settle(channel)

    def _settle(self, channel: bytes) -> None:
        """`channel` needs no more waiting: resolve the `follow` results waiting only for it."""
        for pending, fut in self._waiting.pop(channel, ()):
            pending.discard(channel)
            if not pending and not fut.done():
                fut.set_result(None)

    def _disconnected(self) -> None:
        self._connected = False
        self._live.clear()
        self._unconfirmed.clear()
        for waiters in self._waiting.values():
            for _, fut in waiters:
                if not fut.done():
                    fut.set_result(None)  # nothing to wait for: the gap handlers run on return
        self._waiting = {}

    # -- the subscription -------------------------------------------------------------------------

    async def _subscription(self) -> None:
        """Keep one pub/sub connection subscribed to every followed channel, for ever."""
        delay = 0.05
        while not self._closing:
            pubsub = self._link.pubsub()
            was_connected = False
            try:
                await self._session(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure means: reconnect
                was_connected = self._connected
                self._link.lost(exc)
            finally:
                self._disconnected()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self._link.timeout):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
            delay = 0.05 if was_connected else min(delay * 2, 2.0)
            await asyncio.sleep(delay)

    async def _session(self, pubsub: PubSub) -> None:
        self._commands.clear()  # the first SUBSCRIBE below covers everything followed now
        channels = [self._everyone, *self._counts]
        for ch in channels:
            self._unconfirmed[ch] += 1
        async with asyncio.timeout(self._link.timeout):
            await pubsub.subscribe(*channels)
        reader = asyncio.ensure_future(self._read(pubsub))
        try:
            deadline = time.monotonic() + max(5 * self._link.timeout, 2.0)
            while any(ch in self._unconfirmed for ch in channels):
                if reader.done() or time.monotonic() > deadline:
                    raise ConnectionError("Redis did not confirm the subscription")
                await asyncio.sleep(0.005)
            self._connected = True
            self._link.back()
            self._established.set()
            self._gap()  # whatever was published while this node was not subscribed
            if self._missed:
                self._outbox_ready.set()
            await self._command_and_ping(pubsub, reader)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _read(self, pubsub: PubSub) -> None:
        self._last_pong = time.monotonic()
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            kind = kind.decode() if isinstance(kind, bytes) else kind
            if kind == "message":
                self._received(message["channel"], message["data"])
            elif kind == "subscribe":
                self._confirmed(message["channel"])
            elif kind == "pong":
                self._last_pong = time.monotonic()

    async def _command_and_ping(self, pubsub: PubSub, reader: asyncio.Future[None]) -> None:
        """Send (un)subscriptions as they come, and a PING every `ping_seconds`; a Redis that
        leaves three PINGs unanswered counts as lost."""
        next_ping = time.monotonic() + self._ping_seconds
        while not self._closing:
            if reader.done():
                reader.result()  # raises the reader's error
                raise ConnectionError("the subscription ended")
            wait = max(0.0, next_ping - time.monotonic())
            await _wait(self._command_ready, min(wait, 0.5))
            self._command_ready.clear()
            while self._commands:
                op, channels = self._commands.popleft()
                while self._commands and self._commands[0][0] == op:
                    channels += self._commands.popleft()[1]
                if op == "sub":
                    channels = [ch for ch in dict.fromkeys(channels) if ch in self._counts]
                    for ch in channels:
                        self._unconfirmed[ch] += 1
                    if channels:
                        async with asyncio.timeout(self._link.timeout):
                            await pubsub.subscribe(*channels)
                else:
                    channels = [ch for ch in dict.fromkeys(channels) if ch not in self._counts]
                    if channels:
                        async with asyncio.timeout(self._link.timeout):
                            await pubsub.unsubscribe(*channels)
            now = time.monotonic()
            if now >= next_ping:
                if now - self._last_pong > 3 * self._ping_seconds + self._link.timeout:
                    raise ConnectionError("Redis stopped answering PING")
                async with asyncio.timeout(self._link.timeout):
                    await pubsub.ping()
                next_ping = now + self._ping_seconds

    # -- publishing -------------------------------------------------------------------------------

    async def _publisher(self) -> None:
        """Publish the queue in order, in pipelines; announce lost publishes once Redis is back."""
        while not self._closing:
            await _wait(self._outbox_ready, 1.0 if self._missed else None)
            self._outbox_ready.clear()
            while self._outbox:
                batch = [self._outbox.popleft() for _ in range(min(len(self._outbox), 512))]
                if not await self._send(batch):
                    self._missed = True
            announce = [([self._everyone], self._envelope(_GAP))]
            if self._missed and self._connected and await self._send(announce):
                self._missed = False

    async def _send(self, batch: list[tuple[list[bytes], bytes]]) -> bool:
        def fill(pipe: Any) -> None:
            for channels, data in batch:
                for ch in channels:
                    pipe.publish(ch, data)

        try:
            await self._link.pipeline(fill, fail_fast=False)
        except RedisUnavailable:
            return False
        return True
