"""The in-process bus: what one node publishes is handed to that node's subscribers."""

from __future__ import annotations

import logging
from collections.abc import Callable

from enclave.domain.signals import Signal

Subscriber = Callable[[Signal], None]

log = logging.getLogger(__name__)


class InProcessBus:
    """Delivers each signal to every subscriber, synchronously and in publish order."""

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
