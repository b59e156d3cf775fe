"""What every service function needs, and the unit-of-work helper that publishes after commit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from enclave.bus.base import Bus
from enclave.config import Config
from enclave.config.sections import AlertsConfig
from enclave.crypto.keyring import KeyProvider
from enclave.crypto.passwords import Passwords
from enclave.domain.events import Event, Payload
from enclave.domain.ids import ConversationId, UserId, conversation_scope
from enclave.domain.signals import Committed
from enclave.services.alerts import Monitor
from enclave.services.limits import MemoryRateLimiter, RateLimiter
from enclave.services.presence import MemoryPresence, PresenceStore
from enclave.services.sealer import DataKeys
from enclave.storage import conversations as conv_store
from enclave.storage import messages as msg_store
from enclave.storage.base import Database, Tx

T = TypeVar("T")


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


@dataclass
class Context:
    """The service layer's dependencies, built once by the composition root."""

    db: Database
    bus: Bus
    passwords: Passwords
    config: Config
    keys: KeyProvider
    """The key-encryption keys and the audit key (`enclave.crypto.keyring`)."""
    data_keys: DataKeys
    """Encryption at rest; also the `sealer` of every transaction of `db`."""
    clock: Clock = field(default_factory=SystemClock)
    # Login lockout and request rate limits, and presence: this process's memory on one node,
    # Redis in a cluster (the composition root picks).
    limiter: RateLimiter = field(default_factory=MemoryRateLimiter)
    presence: PresenceStore = field(default_factory=MemoryPresence)
    node_id: str = "node"
    """Names this process among the nodes of a cluster."""
    alerts: Monitor = field(default_factory=lambda: Monitor(AlertsConfig()))
    """The alert rules' counts (`services.alerts`): this context's own, in memory or Redis."""

    async def cpu(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-heavy work (password hashing) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


class Changes:
    """A write transaction plus the events it records; the events go out only after commit."""

    __slots__ = ("events", "now", "tx")

    def __init__(self, tx: Tx, now: int) -> None:
        self.tx = tx
        self.now = now
        self.events: list[Event] = []

    def next_seq(self, conv_id: ConversationId) -> int:
        return conv_store.next_seq(self.tx, conv_id)

    def record(
        self, conv_id: ConversationId, payload: Payload, actor: UserId, *, seq: int | None = None
    ) -> Event:
        """Store an event in the conversation's log, taking the next seq unless one is given;
        its type is the payload's."""
        event = Event(
            conversation_id=conv_id,
            seq=seq if seq is not None else self.next_seq(conv_id),
            actor_id=actor,
            created_at=self.now,
            payload=payload,
        )
        msg_store.insert_event(self.tx, event)
        self.events.append(event)
        return event


async def write(ctx: Context, fn: Callable[[Changes], T]) -> T:
    """Run `fn` in one write transaction; publish what it recorded once it has committed."""
    now = ctx.clock.now_ms()

    def work(tx: Tx) -> tuple[T, list[Event]]:
        changes = Changes(tx, now)
        return fn(changes), changes.events

    result, events = await ctx.db.write(work)
    if events:
        await ctx.bus.publish(Committed(tuple(events)))
        for event in events:  # a dictionary lookup each, once the keys are known
            await ctx.data_keys.confirm(
                ctx.db, conversation_scope(event.conversation_id), event.created_at
            )
    return result
