"""The login lockout at the service level: `auth.login` with a client address and a fake
clock (the REST answers are in tests/api/test_abuse.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from enclave.app import open_context
from enclave.domain.errors import RateLimited, Unauthenticated
from enclave.services import accounts, auth
from tests.conftest import TEST_PASSWORD, make_config


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def now_ms(self) -> int:
        return self.now


async def test_lockout_doubles_and_expires_and_never_checks_the_password(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        **{
            "auth.lockout_failures": 2,
            "auth.lockout_base_seconds": 10,
            "auth.lockout_max_seconds": 25,
        },
    )
    async with open_context(config) as ctx:
        clock = FakeClock()
        ctx.clock = clock
        await accounts.bootstrap(ctx)
        await accounts.create_user(
            ctx, None, username="bob", password=TEST_PASSWORD, display_name="Bob"
        )
        ip = "192.0.2.1"
        for _ in range(2):
            with pytest.raises(Unauthenticated):
                await auth.login(ctx, "bob", "wrong", ip=ip)
        waits = []
        for _ in range(3):
            with pytest.raises(RateLimited) as locked:
                await auth.login(ctx, "Bob ", TEST_PASSWORD, ip=ip)  # same account
            waits.append(locked.value.retry_after_s)
            clock.now += locked.value.retry_after_s * 1000
            with pytest.raises(Unauthenticated):
                await auth.login(ctx, "bob", "wrong", ip=ip)
        assert waits == [10, 20, 25]
        # Without an address (the operator's own tools) the pair is a separate one.
        assert (await auth.login(ctx, "bob", TEST_PASSWORD)).user.username == "bob"
        # The failure window: a counter starts again after an hour without failures.
        clock.now += 3_600_001
        assert (await auth.login(ctx, "bob", TEST_PASSWORD, ip=ip)).user.username == "bob"


async def test_parallel_guesses_cannot_outrun_the_lockout(tmp_path: Path) -> None:
    """Twenty wrong passwords sent at once for one account from one address: the password is
    checked no more often than the lockout allows, however the requests interleave."""
    config = make_config(tmp_path, **{"auth.lockout_failures": 3})
    async with open_context(config) as ctx:
        await accounts.bootstrap(ctx)
        await accounts.create_user(
            ctx, None, username="bob", password=TEST_PASSWORD, display_name="Bob"
        )
        checked = 0
        verify = ctx.passwords.verify

        def counting_verify(stored: str | None, password: str) -> bool:
            nonlocal checked
            checked += 1
            return verify(stored, password)

        ctx.passwords.verify = counting_verify  # type: ignore[method-assign]
        wrong = 0
        for _ in range(6):  # rounds of 20 at once; the lock comes after the 3rd failure
            results = await asyncio.gather(
                *(auth.login(ctx, "bob", f"wrong {i}", ip="192.0.2.7") for i in range(20)),
                return_exceptions=True,
            )
            assert all(isinstance(r, Unauthenticated | RateLimited) for r in results), results
            wrong += sum(isinstance(r, Unauthenticated) for r in results)
        assert wrong == checked == 3
        # Once the attempts are over, the lock (not a stuck in-flight slot) is what refuses.
        with pytest.raises(RateLimited) as locked:
            await auth.login(ctx, "bob", TEST_PASSWORD, ip="192.0.2.7")
        assert locked.value.retry_after_s > 1
