"""The `Bus` port: fan-out of signals between this node's subscribers and the other nodes'.
Its adapters sit beside it: `memory.py` (one node) and `redis.py` (a cluster)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from enclave.domain.signals import Signal
from enclave.domain.topics import Topic

__all__ = ["Bus"]


class Bus(Protocol):
    """Carries signals to the subscribers of every node that follows their topics (see
    enclave.bus and enclave.domain.topics). This node's subscribers get what it publishes at
    once and in order; other nodes' signals arrive for the topics this node follows."""

    async def publish(self, signal: Signal) -> None: ...

    def subscribe(self, subscriber: Callable[[Signal], None]) -> Callable[[], None]: ...

    def follow(self, topics: Iterable[Topic]) -> Awaitable[None]:
        """Receive other nodes' signals of `topics` too (counted: unfollow as often); the result
        is done once they arrive (or at once when there is no one to ask)."""
        ...

    def unfollow(self, topics: Iterable[Topic]) -> None: ...

    def on_gap(self, handler: Callable[[], None]) -> Callable[[], None]:
        """Run `handler` whenever this node may have missed other nodes' signals."""
        ...
