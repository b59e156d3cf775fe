"""Rate-limit state behind a small interface: token buckets, failure counters, trust marks.

`RateLimiter` is what the login lockout (`services.lockout`) and the request limits of the API
use. `MemoryRateLimiter` keeps the state in one process, which is right for one node; a cluster
shares it through Redis (`enclave.bus.shared.RedisRateLimiter`, the same contract, checked by
one test suite run on both). Every method takes the current time from the caller, so tests
drive it with a fake clock and no method ever sleeps; the methods are coroutines because the
shared store answers over the network.
"""

from __future__ import annotations

import contextlib
import math
from typing import Protocol

from enclave.domain.errors import RateLimited
from enclave.domain.shared import Failures, StoreUnavailable

__all__ = ["Failures", "FallbackRateLimiter", "MemoryRateLimiter", "RateLimiter", "enforce"]


class RateLimiter(Protocol):
    async def take(self, key: str, *, per_second: float, burst: int, now_ms: int) -> int:
        """Take one token from `key`'s bucket: 0 if allowed, else milliseconds until a token."""
        ...

    async def failures(self, key: str, *, window_ms: int, now_ms: int) -> Failures:
        """The failures counted for `key` (a count of 0 once `window_ms` passed without one)."""
        ...

    async def add_failure(self, key: str, *, window_ms: int, now_ms: int) -> Failures:
        """Count one failure for `key` and return the new count."""
        ...

    async def clear(self, key: str) -> None:
        """Forget the failures of `key`."""
        ...

    async def mark(self, key: str, *, until_ms: int) -> None:
        """Remember `key` until `until_ms` (used for addresses that logged in successfully)."""
        ...

    async def marked(self, key: str, *, now_ms: int) -> bool: ...

    async def acquire(self, key: str, *, limit: int, ttl_ms: int, now_ms: int) -> bool:
        """Take one of `limit` concurrent slots of `key`; False if all are taken. A slot not
        released within `ttl_ms` (a crashed holder) frees itself."""
        ...

    async def release(self, key: str) -> None:
        """Give back a slot taken by `acquire`."""
        ...


class MemoryRateLimiter:
    """The state of one process. Expired entries are swept now and then, so memory stays
    proportional to the keys active within their windows."""

    _SWEEP_EVERY = 4096

    def __init__(self) -> None:
        # key -> (tokens, at_ms, ms until the bucket is full again from empty)
        self._buckets: dict[str, tuple[float, int, int]] = {}
        # key -> (count, last_ms, window_ms)
        self._failures: dict[str, tuple[int, int, int]] = {}
        self._marks: dict[str, int] = {}
        # key -> expiry times of the slots held
        self._slots: dict[str, list[int]] = {}
        self._ops = 0

    async def take(self, key: str, *, per_second: float, burst: int, now_ms: int) -> int:
        self._tick(now_ms)
        tokens, at_ms, _ = self._buckets.get(key, (float(burst), now_ms, 0))
        elapsed = max(0, now_ms - at_ms)
        tokens = min(float(burst), tokens + elapsed * per_second / 1000.0)
        refill_ms = math.ceil(burst / per_second * 1000.0)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now_ms, refill_ms)
            # The epsilon keeps float noise (1.0000000000000009 ms) from adding a millisecond.
            return max(1, math.ceil((1.0 - tokens) / per_second * 1000.0 - 1e-6))
        self._buckets[key] = (tokens - 1.0, now_ms, refill_ms)
        return 0

    async def failures(self, key: str, *, window_ms: int, now_ms: int) -> Failures:
        count, last_ms, _ = self._failures.get(key, (0, 0, window_ms))
        if count and now_ms - last_ms > window_ms:
            return Failures(0, 0)
        return Failures(count, last_ms)

    async def add_failure(self, key: str, *, window_ms: int, now_ms: int) -> Failures:
        self._tick(now_ms)
        current = await self.failures(key, window_ms=window_ms, now_ms=now_ms)
        self._failures[key] = (current.count + 1, now_ms, window_ms)
        return Failures(current.count + 1, now_ms)

    async def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    async def mark(self, key: str, *, until_ms: int) -> None:
        self._marks[key] = until_ms

    async def marked(self, key: str, *, now_ms: int) -> bool:
        return self._marks.get(key, 0) > now_ms

    async def acquire(self, key: str, *, limit: int, ttl_ms: int, now_ms: int) -> bool:
        held = [t for t in self._slots.get(key, []) if t > now_ms]
        if len(held) >= limit:
            self._slots[key] = held
            return False
        held.append(now_ms + ttl_ms)
        self._slots[key] = held
        return True

    async def release(self, key: str) -> None:
        held = self._slots.get(key)
        if held:
            held.remove(min(held))
            if not held:
                del self._slots[key]

    def _tick(self, now_ms: int) -> None:
        self._ops += 1
        if self._ops % self._SWEEP_EVERY == 0:
            self.sweep(now_ms)

    def sweep(self, now_ms: int) -> None:
        """Drop full buckets, failures past their window and expired marks."""
        self._buckets = {k: v for k, v in self._buckets.items() if now_ms - v[1] < v[2]}
        self._failures = {k: v for k, v in self._failures.items() if now_ms - v[1] <= v[2]}
        self._marks = {k: v for k, v in self._marks.items() if v > now_ms}
        self._slots = {
            k: live for k, v in self._slots.items() if (live := [t for t in v if t > now_ms])
        }


class FallbackRateLimiter:
    """A shared limiter that uses this process's memory while the shared store does not answer
    (`StoreUnavailable`), so that losing Redis never stops logins or requests. Meanwhile each
    node counts on its own, and what it counted is forgotten when the store is back."""

    def __init__(self, shared: RateLimiter, local: RateLimiter | None = None) -> None:
        self.shared = shared
        self.local = local or MemoryRateLimiter()

    async def take(self, key: str, *, per_second: float, burst: int, now_ms: int) -> int:
        try:
            return await self.shared.take(key, per_second=per_second, burst=burst, now_ms=now_ms)
        except StoreUnavailable:
            return await self.local.take(key, per_second=per_second, burst=burst, now_ms=now_ms)

    async def failures(self, key: str, *, window_ms: int, now_ms: int) -> Failures:
        try:
            return await self.shared.failures(key, window_ms=window_ms, now_ms=now_ms)
        except StoreUnavailable:
            return await self.local.failures(key, window_ms=window_ms, now_ms=now_ms)

    async def add_failure(self, key: str, *, window_ms: int, now_ms: int) -> Failures:
        try:
            return await self.shared.add_failure(key, window_ms=window_ms, now_ms=now_ms)
        except StoreUnavailable:
            return await self.local.add_failure(key, window_ms=window_ms, now_ms=now_ms)

    async def clear(self, key: str) -> None:
        await self.local.clear(key)
        with contextlib.suppress(StoreUnavailable):
            await self.shared.clear(key)

    async def mark(self, key: str, *, until_ms: int) -> None:
        await self.local.mark(key, until_ms=until_ms)
        with contextlib.suppress(StoreUnavailable):
            await self.shared.mark(key, until_ms=until_ms)

    async def marked(self, key: str, *, now_ms: int) -> bool:
        try:
            return await self.shared.marked(key, now_ms=now_ms)
        except StoreUnavailable:
            return await self.local.marked(key, now_ms=now_ms)

    async def acquire(self, key: str, *, limit: int, ttl_ms: int, now_ms: int) -> bool:
        try:
            return await self.shared.acquire(key, limit=limit, ttl_ms=ttl_ms, now_ms=now_ms)
        except StoreUnavailable:
            return await self.local.acquire(key, limit=limit, ttl_ms=ttl_ms, now_ms=now_ms)

    async def release(self, key: str) -> None:
        # The slot may have been taken from either store; the other has none to give back.
        await self.local.release(key)
        with contextlib.suppress(StoreUnavailable):
            await self.shared.release(key)


async def enforce(
    limiter: RateLimiter, key: str, *, per_second: float, burst: int, now_ms: int
) -> None:
    """Take a token or raise RateLimited with the whole seconds to wait."""
    wait_ms = await limiter.take(key, per_second=per_second, burst=burst, now_ms=now_ms)
    if wait_ms:
        raise RateLimited(
            "rate_limited", "too many requests; slow down", retry_after_s=math.ceil(wait_ms / 1000)
        )
