"""Indexes of live connections whose keys this node follows on the bus.

The hub keeps its connections by conversation, by person, by organization and by watched
person. Each of those indexes is a `Followed`: while a key has a connection here, this node
follows the key's topic (`enclave.domain.topics`), so other nodes' signals for it arrive; when
its last connection goes, the topic is unfollowed. With the in-process bus this costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from enclave.bus.base import Bus
from enclave.domain.topics import Topic
from enclave.realtime.connection import Connection

K = TypeVar("K")

__all__ = ["Followed"]


class Followed(dict[K, set[Connection]], Generic[K]):
    """`key -> connections`, following `topic(key)` on `bus` while the key is present. Keys are
    added with `setdefault` and removed with `del` (as the hub does); `pending[key]` is the
    subscription of a newly followed key until Redis confirms it, and `on_followed` is called
    with it (the hub then catches up what may have passed meanwhile)."""

    def __init__(
        self,
        bus: Bus,
        topic: Callable[[K], Topic],
        on_followed: Callable[[K, Awaitable[None]], None] | None = None,
    ) -> None:
        super().__init__()
        self._bus = bus
        self._topic = topic
        self._on_followed = on_followed
        self.pending: dict[K, Awaitable[None]] = {}

    def setdefault(self, key: K, default: set[Connection] | None = None) -> set[Connection]:
        found = self.get(key)
        if found is not None:
            return found
        conns = set() if default is None else default
        super().__setitem__(key, conns)
        done = self._bus.follow([self._topic(key)])
        if isinstance(done, asyncio.Future) and not done.done():
            self.pending[key] = done
            done.add_done_callback(lambda _: self._settle(key, done))
            if self._on_followed is not None:
                self._on_followed(key, done)
        return conns

    def _settle(self, key: K, done: Awaitable[None]) -> None:
        if self.pending.get(key) is done:
            del self.pending[key]

    def __delitem__(self, key: K) -> None:
        super().__delitem__(key)
        self.pending.pop(key, None)
        self._bus.unfollow([self._topic(key)])

    async def settled(self, key: K) -> None:
        """Wait until the subscription of `key` is in place (at once if it is)."""
        done = self.pending.get(key)
        if done is not None:
            await done
