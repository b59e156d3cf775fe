"""One client's live connection: what it has been sent, per conversation, and its limits.

A connection knows its owner (the node's `Hub`) only as a `ConnectionOwner`: the three things
it asks of it. So `connection` imports nothing else of `realtime` but its frames, and the hub's
parts (`follow`, `presence`, `resume`) can import `Connection` without an import cycle.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Protocol

from enclave.domain.events import Event, EventType
from enclave.domain.ids import ConversationId, UserId
from enclave.domain.models import User
from enclave.domain.signals import PresenceStatus
from enclave.realtime.frames import CloseCode

__all__ = ["Connection", "ConnectionOwner", "Sink"]


class ConnectionOwner(Protocol):
    """What a connection asks of whoever keeps it (the node's `Hub`)."""

    def catch_up(self, conn: Connection, conv: ConversationId) -> None:
        """`conn` saw a gap in `conv`: fill it from the stored log."""
        ...

    def unsubscribe(self, conn: Connection, conv: ConversationId) -> None:
        """`conn` got its person's own `member.left` of `conv`: deliver no more of it."""
        ...

    def unregister(self, conn: Connection) -> None:
        """`conn` closed: forget it."""
        ...


class Sink(Protocol):
    """Where a connection's bytes go (an aiohttp WebSocket in production)."""

    def write(self, frame: bytes) -> None: ...

    def buffered(self) -> int: ...

    def close(self, code: int, reason: str) -> None: ...


class Connection:
    """State of one WebSocket session. `delivered[conv]` is the seq of the last event of that
    conversation sent here; events are only ever sent as delivered+1, so none is skipped or
    doubled. A conversation absent from `delivered` is not subscribed.

    Until `ready` is written (`start`), nothing else is: what the hub offers or sends meanwhile
    is held, in order, and then replayed through the same seq logic, so `ready` is always the
    first frame and nothing held is lost or doubled."""

    __slots__ = (
        "_bucket",
        "_bucket_at",
        "_deferred",
        "_held",
        "_held_bytes",
        "_rejected",
        "_typing_at",
        "alive",
        "catching",
        "delivered",
        "id",
        "max_buffer",
        "owner",
        "rate_burst",
        "rate_per_second",
        "sink",
        "status",
        "token_hash",
        "user",
        "watching",
    )

    def __init__(
        self,
        owner: ConnectionOwner,
        conn_id: str,
        user: User,
        token_hash: bytes,
        sink: Sink,
        *,
        max_buffer: int,
        rate_per_second: float,
        rate_burst: int,
    ) -> None:
        self.owner = owner
        self.id = conn_id
        self.user = user
        self.token_hash = token_hash
        self.sink = sink
        self.max_buffer = max_buffer
        self.rate_per_second = rate_per_second
        self.rate_burst = rate_burst
        self.delivered: dict[ConversationId, int] = {}
        self.catching: dict[ConversationId, bool] = {}
        self.watching: set[UserId] = set()
        self.status = PresenceStatus.ONLINE
        self.alive = True
        self._bucket = float(rate_burst)
        self._bucket_at = time.monotonic()
        self._rejected = 0
        self._typing_at: dict[ConversationId, float] = {}
        self._held: list[tuple[Event | None, bytes]] | None = []
        self._held_bytes = 0
        self._deferred: set[ConversationId] = set()

    @property
    def user_id(self) -> UserId:
        return self.user.id

    def send(self, frame: bytes) -> None:
        """Queue a frame; a connection whose queue passes the limit is dropped (it resumes)."""
        if not self.alive:
            return
        if self._held is not None:
            self._hold(None, frame)
            return
        if self.sink.buffered() > self.max_buffer:
            self.drop(CloseCode.TOO_SLOW, "too slow: resume from your cursor")
            return
        self.sink.write(frame)

    def offer(self, event: Event, frame: bytes, *, replay: bool = False) -> None:
        """Send `event` if it is the next one of its conversation here; ask for a catch-up on a
        gap; ignore what was already sent."""
        if self._held is not None and not replay:
            if self.alive:
                self._hold(event, frame)
            return
        conv = event.conversation_id
        last = self.delivered.get(conv)
        if last is None or event.seq <= last:
            return
        if event.seq != last + 1:
            self.gap(conv)
            return
        self.delivered[conv] = event.seq
        self.send(frame)
        if (
            not replay
            and event.type is EventType.MEMBER_LEFT
            and event.data.get("user_id") == self.user.id
        ):
            self.owner.unsubscribe(self, conv)

    def gap(self, conv: ConversationId) -> None:
        """This connection is behind in `conv`: ask for a catch-up, or, until `ready` is
        written, remember to ask right after it (a catch-up writes events)."""
        if self._held is not None:
            self._deferred.add(conv)
            return
        self.owner.catch_up(self, conv)

    def _hold(self, event: Event | None, frame: bytes) -> None:
        """Keep a frame until `ready` is written; past the send buffer's limit the connection
        is dropped like a slow one (the client resumes from its cursors)."""
        assert self._held is not None
        self._held_bytes += len(frame)
        if self._held_bytes > self.max_buffer:
            self.drop(CloseCode.TOO_SLOW, "too slow: resume from your cursor")
            return
        self._held.append((event, frame))

    def start(self, ready: bytes, catching: Iterable[ConversationId] = ()) -> None:
        """Write `ready`, then what was held meanwhile: events through `offer` (so an event
        already covered is ignored and a gap asks for a catch-up), other frames as they came.
        `catching`: conversations whose catch-up is about to run; gaps seen in them while the
        held events are replayed join that pass instead of starting their own."""
        held, self._held, self._held_bytes = self._held or [], None, 0
        self.send(ready)
        for conv in catching:
            self.catching.setdefault(conv, False)
        for event, frame in held:
            if event is None:
                self.send(frame)
            else:
                self.offer(event, frame)
        deferred, self._deferred = self._deferred, set()
        for conv in deferred:
            if conv in self.delivered:
                self.gap(conv)

    def allow_frame(self) -> bool:
        """Token bucket over frames received from the client."""
        now = time.monotonic()
        self._bucket = min(
            float(self.rate_burst), self._bucket + (now - self._bucket_at) * self.rate_per_second
        )
        self._bucket_at = now
        if self._bucket < 1.0:
            self._rejected += 1
            return False
        self._bucket -= 1.0
        self._rejected = 0
        return True

    @property
    def flooding(self) -> bool:
        """True once the client kept sending through a whole burst's worth of refusals."""
        return self._rejected > self.rate_burst

    def allow_typing(self, conv: ConversationId, every: float = 2.0) -> bool:
        now = time.monotonic()
        if now - self._typing_at.get(conv, 0.0) < every:
            return False
        self._typing_at[conv] = now
        return True

    def drop(self, code: int, reason: str) -> None:
        """Close the connection and forget it; the client resumes from its cursor."""
        if not self.alive:
            return
        self.alive = False
        self.owner.unregister(self)
        self.sink.close(code, reason)
