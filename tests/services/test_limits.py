"""The RateLimiter contract, run on every implementation (this process's memory, and Redis
shared by the nodes of a cluster), and the password policy."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from enclave.bus.redis.link import RedisLink
from enclave.bus.shared import RedisRateLimiter
from enclave.crypto.common_passwords import common_passwords
from enclave.domain.errors import InvalidInput, RateLimited
from enclave.services import validate
from enclave.services.limits import MemoryRateLimiter, RateLimiter, enforce

T0 = 1_800_000_000_000


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> tuple[str, str] | None:
    """Where the limiter keeps its state: None for memory, else a Redis URL and prefix."""
    if request.param == "memory":
        return None
    return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")


@pytest.fixture
async def limiter(store: tuple[str, str] | None) -> AsyncIterator[RateLimiter]:
    if store is None:
        yield MemoryRateLimiter()
        return
    link = RedisLink(store[0], prefix=store[1])
    try:
        yield RedisRateLimiter(link)
    finally:
        await link.close()


async def test_bucket_allows_a_burst_then_refills(limiter: RateLimiter) -> None:
    async def take(key: str, now: int) -> int:
        return await limiter.take(key, per_second=2.0, burst=3, now_ms=now)

    assert [await take("a", T0) for _ in range(3)] == [0, 0, 0]
    assert await take("a", T0) == 500  # one token comes back every 500 ms
    assert await take("b", T0) == 0  # keys are independent
    assert await take("a", T0 + 499) == 1
    assert await take("a", T0 + 500) == 0
    assert await take("a", T0 + 10_000) == 0  # refills to the burst, never beyond it
    assert await take("a", T0 + 10_000) == 0
    assert await take("a", T0 + 10_000) == 0
    assert await take("a", T0 + 10_000) > 0


async def test_enforce_raises_with_whole_seconds(limiter: RateLimiter) -> None:
    await enforce(limiter, "k", per_second=0.1, burst=1, now_ms=T0)
    with pytest.raises(RateLimited) as info:
        await enforce(limiter, "k", per_second=0.1, burst=1, now_ms=T0 + 1)
    assert info.value.code == "rate_limited"
    assert info.value.retry_after_s == 10


async def test_failures_count_within_a_window(limiter: RateLimiter) -> None:
    window = 60_000
    assert (await limiter.failures("k", window_ms=window, now_ms=T0)).count == 0
    assert (await limiter.add_failure("k", window_ms=window, now_ms=T0)).count == 1
    found = await limiter.add_failure("k", window_ms=window, now_ms=T0 + 50_000)
    assert (found.count, found.last_ms) == (2, T0 + 50_000)
    # The window runs from the last failure.
    assert (await limiter.failures("k", window_ms=window, now_ms=T0 + 110_000)).count == 2
    assert (await limiter.failures("k", window_ms=window, now_ms=T0 + 110_001)).count == 0
    assert (await limiter.add_failure("k", window_ms=window, now_ms=T0 + 110_001)).count == 1
    await limiter.clear("k")
    assert (await limiter.failures("k", window_ms=window, now_ms=T0 + 110_001)).count == 0


async def test_marks_expire(limiter: RateLimiter) -> None:
    assert not await limiter.marked("m", now_ms=T0)
    await limiter.mark("m", until_ms=T0 + 10)
    assert await limiter.marked("m", now_ms=T0 + 9)
    assert not await limiter.marked("m", now_ms=T0 + 10)


async def test_slots_are_limited_released_and_expire(limiter: RateLimiter) -> None:
    async def acquire(now: int) -> bool:
        return await limiter.acquire("s", limit=2, ttl_ms=1000, now_ms=now)

    assert [await acquire(T0), await acquire(T0 + 1), await acquire(T0 + 2)] == [1, 1, 0]
    await limiter.release("s")
    assert await acquire(T0 + 3)
    assert not await acquire(T0 + 4)
    assert await acquire(T0 + 1001)  # the slot taken at T0 was never given back: it expired


async def test_redis_state_is_shared_between_nodes(redis_url: str, redis_prefix: str) -> None:
    """Two nodes, each with its own connection: a bucket, a failure count, a mark and the
    in-flight slots are one for both."""
    links = [RedisLink(redis_url, prefix=redis_prefix) for _ in range(2)]
    a, b = (RedisRateLimiter(link) for link in links)
    try:
        assert await a.take("k", per_second=1.0, burst=2, now_ms=T0) == 0
        assert await b.take("k", per_second=1.0, burst=2, now_ms=T0) == 0
        assert await a.take("k", per_second=1.0, burst=2, now_ms=T0) == 1000
        await a.add_failure("f", window_ms=60_000, now_ms=T0)
        assert (await b.add_failure("f", window_ms=60_000, now_ms=T0)).count == 2
        await b.mark("m", until_ms=T0 + 5)
        assert await a.marked("m", now_ms=T0)
        assert await a.acquire("s", limit=1, ttl_ms=1000, now_ms=T0)
        assert not await b.acquire("s", limit=1, ttl_ms=1000, now_ms=T0)
    finally:
        for link in links:
            await link.close()


async def test_memory_sweep_forgets_expired_state() -> None:
    limiter = MemoryRateLimiter()
    await limiter.take("bucket", per_second=1.0, burst=2, now_ms=T0)
    await limiter.add_failure("fail", window_ms=1000, now_ms=T0)
    await limiter.mark("mark", until_ms=T0 + 1000)
    limiter.sweep(T0 + 500)
    assert (len(limiter._buckets), len(limiter._failures), len(limiter._marks)) == (1, 1, 1)
    limiter.sweep(T0 + 5000)
    assert (len(limiter._buckets), len(limiter._failures), len(limiter._marks)) == (0, 0, 0)


# -- password policy ----------------------------------------------------------------------------


def _check(password: str, username: str = "dave") -> None:
    validate.password(password, min_length=12, username_=username)


def test_the_shipped_list_is_loaded_once_and_lower_case() -> None:
    words = common_passwords()
    assert common_passwords() is words
    assert len(words) >= 1000
    assert {"password", "123456", "qwerty", "iloveyou", "letmein"} <= words
    assert all(w == w.lower() and w.strip() == w for w in words)


@pytest.mark.parametrize(
    "password",
    ["passwordpassword", "PASSWORD1234", "Password1234!?", "  Qwertyuiop12 ", "zxcvbnm,./123"],
)
def test_common_passwords_are_refused(password: str) -> None:
    with pytest.raises(InvalidInput) as info:
        _check(password)
    assert info.value.code == "weak_password"


@pytest.mark.parametrize(
    ("password", "username"),
    [("short", "dave"), ("x" * 1025, "dave"), ("DAVE rules forever", "dave"), ("a\x00" * 8, "d")],
)
def test_length_username_and_nul_rules(password: str, username: str) -> None:
    with pytest.raises(InvalidInput) as info:
        _check(password, username)
    assert info.value.code == "weak_password"


def test_good_passwords_pass() -> None:
    for password in ("correct horse battery staple", "tulip-orbit-cascade-97", "Vx9#qLm2!pRt"):
        assert _check(password) is None
