"""The in-process bus: committed events handed to local subscribers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from enclave.domain.events import Event

Subscriber = Callable[[Sequence[Event]], None]

log = logging.getLogger(__name__)


class InProcessBus:
    """Delivers each published batch to every subscriber, synchronously and in order."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        for subscriber in list(self._subscribers):
            try:
                subscriber(events)
            except Exception:  # one broken subscriber must not stop the others
                log.exception("bus subscriber failed")
