"""The RateLimiter contract, run on every implementation (only the in-memory one so far), and
the password policy."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from enclave.crypto.common_passwords import common_passwords
from enclave.domain.errors import InvalidInput, RateLimited
from enclave.services import validate
from enclave.services.limits import MemoryRateLimiter, RateLimiter, enforce

IMPLEMENTATIONS: dict[str, Callable[[], RateLimiter]] = {"memory": MemoryRateLimiter}
T0 = 1_800_000_000_000


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    return IMPLEMENTATIONS[request.param]()


def test_bucket_allows_a_burst_then_refills(limiter: RateLimiter) -> None:
    take = lambda key, now: limiter.take(key, per_second=2.0, burst=3, now_ms=now)  # noqa: E731
    assert [take("a", T0) for _ in range(3)] == [0, 0, 0]
    assert take("a", T0) == 500  # one token comes back every 500 ms
    assert take("b", T0) == 0  # keys are independent
    assert take("a", T0 + 499) == 1
    assert take("a", T0 + 500) == 0
    assert take("a", T0 + 10_000) == 0  # refills to the burst, never beyond it
    assert take("a", T0 + 10_000) == 0
    assert take("a", T0 + 10_000) == 0
    assert take("a", T0 + 10_000) > 0


def test_enforce_raises_with_whole_seconds(limiter: RateLimiter) -> None:
    enforce(limiter, "k", per_second=0.1, burst=1, now_ms=T0)
    with pytest.raises(RateLimited) as info:
        enforce(limiter, "k", per_second=0.1, burst=1, now_ms=T0 + 1)
    assert info.value.code == "rate_limited"
    assert info.value.retry_after_s == 10


def test_failures_count_within_a_window(limiter: RateLimiter) -> None:
    window = 60_000
    assert limiter.failures("k", window_ms=window, now_ms=T0).count == 0
    assert limiter.add_failure("k", window_ms=window, now_ms=T0).count == 1
    found = limiter.add_failure("k", window_ms=window, now_ms=T0 + 50_000)
    assert (found.count, found.last_ms) == (2, T0 + 50_000)
    # The window runs from the last failure.
    assert limiter.failures("k", window_ms=window, now_ms=T0 + 110_000).count == 2
    assert limiter.failures("k", window_ms=window, now_ms=T0 + 110_001).count == 0
    assert limiter.add_failure("k", window_ms=window, now_ms=T0 + 110_001).count == 1
    limiter.clear("k")
    assert limiter.failures("k", window_ms=window, now_ms=T0 + 110_001).count == 0


def test_marks_expire(limiter: RateLimiter) -> None:
    assert not limiter.marked("m", now_ms=T0)
    limiter.mark("m", until_ms=T0 + 10)
    assert limiter.marked("m", now_ms=T0 + 9)
    assert not limiter.marked("m", now_ms=T0 + 10)


def test_memory_sweep_forgets_expired_state() -> None:
    limiter = MemoryRateLimiter()
    limiter.take("bucket", per_second=1.0, burst=2, now_ms=T0)
    limiter.add_failure("fail", window_ms=1000, now_ms=T0)
    limiter.mark("mark", until_ms=T0 + 1000)
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
