"""The in-process bus: what one node publishes is handed to that node's subscribers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Generator, Iterable
from typing import Any

from enclave.domain.signals import Signal
from enclave.domain.topics import Topic

__all__ = ["READY", "InProcessBus", "Ready", "Subscriber"]

Subscriber = Callable[[Signal], None]

log = logging.getLogger(__name__)


class Ready:
    """An awaitable that is done already (ignoring it leaves no un-awaited coroutine)."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


READY = Ready()


class InProcessBus:
    """Delivers each signal to every subscriber, synchronously and in publish order.

    Alone on its node it sees every signal, so following topics changes nothing and it never
    misses anything (its gap handlers are never called)."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def publish(self, signal: Signal) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(signal)
            except Exception:  # one broken subscriber must not stop the others
                log.exception("bus subscriber failed")

    def follow(self, topics: Iterable[Topic]) -> Awaitable[None]:
        """Nothing to do: every signal of this process reaches its subscribers already."""
        return READY

    def unfollow(self, topics: Iterable[Topic]) -> None:
        return None

    def on_gap(self, handler: Callable[[], None]) -> Callable[[], None]:
        """Never called: an in-process bus loses nothing."""
        return lambda: None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await asyncio.sleep(0)
