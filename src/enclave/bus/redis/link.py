"""One node's connection to Redis (`RedisLink`): commands and Lua scripts, used by the shared
state of `enclave.bus.shared` and by the bus (`enclave.bus.redis.bus`), and whether Redis
counts as reachable."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from enclave.domain.shared import StoreUnavailable
from enclave.domain.topics import Topic

__all__ = ["RedisLink", "RedisUnavailable", "Script"]

log = logging.getLogger(__name__)

_ERRORS = (redis.RedisError, OSError, asyncio.TimeoutError)


class RedisUnavailable(StoreUnavailable):
    """Redis did not answer (in time); the caller falls back to what it can do alone."""


class Script:
    """A Lua script, loaded into Redis on first use (EVALSHA, then EVAL if Redis lost it)."""

    def __init__(self, source: str) -> None:
        self.source = source


class RedisLink:
    """One node's connection to Redis.

    After a command fails, Redis counts as lost for `retry_seconds`: during that time calls
    raise `RedisUnavailable` at once, so requests use their fallback instead of each waiting
    for a timeout. The bus's subscription marks Redis reachable again as soon as it reconnects.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        timeout: float = 1.0,
        retry_seconds: float = 1.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        """`on_change(reachable)` is called when Redis counts as lost (False) and back (True)."""
        self.url = url
        self._on_change = on_change
        self.prefix = prefix
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self._down_until = 0.0
        self._lost: bool | None = None  # not known before the first command or subscription
        # No retries inside redis-py: a lost Redis must show at once, and the bus reconnects.
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=AsyncRetry(NoBackoff(), 0),
            decode_responses=False,
        )
        self._sync_client: redis.Redis | None = None
        self._sync_lock = threading.Lock()
        # Scripts as registered with this link's clients (a client belongs to one event loop).
        self._async_scripts: dict[Script, Any] = {}
        self._sync_scripts: dict[Script, Any] = {}

    # -- health -----------------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        """False for a moment after a failure (see the class)."""
        return time.monotonic() >= self._down_until

    def lost(self, exc: BaseException | str) -> None:
        self._down_until = time.monotonic() + self.retry_seconds
        if self._lost is not True:
            self._lost = True
            log.warning("Redis lost (%s); serving from this node's memory until it is back", exc)
            if self._on_change is not None:
                self._on_change(False)

    def back(self) -> None:
        self._down_until = 0.0
        if self._lost is not False:
            if self._lost:
                log.warning("Redis is back")
            self._lost = False
            if self._on_change is not None:
                self._on_change(True)

    # -- names ------------------------------------------------------------------------------------

    def key(self, name: str) -> str:
        """The Redis key of `name` under this cluster's prefix."""
        return self.prefix + name

    def channel(self, topic: Topic) -> bytes:
        return (self.prefix + topic).encode()

    # -- commands ---------------------------------------------------------------------------------

    async def call(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run `script`; RedisUnavailable if Redis is lost or does not answer in time."""
        if not self.up:
            raise RedisUnavailable("Redis counts as lost")
        registered = self._async_scripts.get(script)
        if registered is None:
            registered = self._async_scripts[script] = self.client.register_script(script.source)
        try:
            async with asyncio.timeout(self.timeout):
                result = await registered(keys=keys, args=args)
        except _ERRORS as exc:
            self.lost(exc)
            raise RedisUnavailable(str(exc)) from exc
        return result

    async def pipeline(self, fill: Callable[[Any], None], *, fail_fast: bool = True) -> list[Any]:
        """Run the commands `fill` adds to a pipeline (no transaction) in one round trip.
        Background work that may wait passes `fail_fast=False`: it tries even while Redis
        counts as lost, and its success counts as Redis being back."""
        if fail_fast and not self.up:
            raise RedisUnavailable("Redis counts as lost")
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                fill(pipe)
                async with asyncio.timeout(self.timeout):
                    result: list[Any] = await pipe.execute()
        except _ERRORS as exc:
            self.lost(exc)
            raise RedisUnavailable(str(exc)) from exc
        if not fail_fast:
            self.back()
        return result

    def call_sync(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """`call` for code that runs on a worker thread, never on the event loop."""
        if not self.up:
            raise RedisUnavailable("Redis counts as lost")
        client = self._sync()
        registered = self._sync_scripts.get(script)
        if registered is None:
            registered = self._sync_scripts[script] = client.register_script(script.source)
        try:
            return registered(keys=keys, args=args)
        except (redis.RedisError, OSError) as exc:
            self.lost(exc)
            raise RedisUnavailable(str(exc)) from exc

    def _sync(self) -> redis.Redis:
        with self._sync_lock:  # worker threads may ask at once
            if self._sync_client is None:
                self._sync_client = redis.Redis.from_url(
                    self.url,
                    socket_timeout=self.timeout,
                    socket_connect_timeout=self.timeout,
                    retry=Retry(NoBackoff(), 0),
                )
            return self._sync_client

    def pubsub(self) -> PubSub:
        return self.client.pubsub()

    def delete_prefixed(self) -> int:
        """Delete every key under this prefix (tests, and operators retiring a cluster).
        Blocking: not for the event loop."""
        client = self._sync()
        deleted = 0
        for key in client.scan_iter(match=self.prefix + "*", count=500):
            deleted += int(client.delete(key))
        return deleted

    async def close(self) -> None:
        await self.client.aclose()
        if self._sync_client is not None:
            self._sync_client.close()
