"""Logging in to an account with MFA through the SDK: `MfaRequired`, then `otp` or a
recovery code; wrong codes are `InvalidCredentials`."""

from __future__ import annotations

import time

import pyotp
import pytest

from enclave_client import InvalidCredentials, MfaRequired
from tests.conftest import TEST_PASSWORD
from tests.sdk.conftest import Connect, People

API = "/api/v1"


class FixedClock:
    def __init__(self) -> None:
        self.now = (time.time_ns() // 1_000_000 // 30_000) * 30_000 + 15_000

    def now_ms(self) -> int:
        return self.now


async def test_login_with_a_code_or_a_recovery_code(people: People, connect: Connect) -> None:
    alice = await people.add("alice")
    clock = FixedClock()
    people.world.ctx.clock = clock
    client = people.world.client
    headers = {"Authorization": f"Bearer {alice.sdk.token}"}
    secret = (await client.post(f"{API}/users/me/mfa/totp", headers=headers)).json()["secret"]
    totp = pyotp.TOTP(secret)
    confirmed = await client.post(
        f"{API}/users/me/mfa/totp/confirm",
        json={"code": totp.at(clock.now // 1000)},
        headers=headers,
    )
    codes = confirmed.json()["recovery_codes"]
    clock.now += 30_000

    sdk = connect()
    with pytest.raises(MfaRequired) as needed:
        await sdk.login("alice", TEST_PASSWORD)
    assert (needed.value.code, needed.value.status) == ("mfa_required", 401)
    assert sdk.token is None
    with pytest.raises(InvalidCredentials):
        await sdk.login("alice", "not the password")
    good = totp.at(clock.now // 1000)
    with pytest.raises(InvalidCredentials):
        await sdk.login("alice", TEST_PASSWORD, otp="000000" if good != "000000" else "111111")
    user = await sdk.login("alice", TEST_PASSWORD, otp=good)
    assert user.id == alice.id and sdk.token is not None

    other = connect()
    assert (await other.login("alice", TEST_PASSWORD, recovery_code=codes[0])).id == alice.id
    with pytest.raises(InvalidCredentials):
        await connect().login("alice", TEST_PASSWORD, recovery_code=codes[0])
