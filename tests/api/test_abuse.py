"""Abuse defenses through the REST API: password policy, login lockout, request rate limits.

Time is a fake clock on the service context, so lockouts and buckets are driven without sleeping.
Each test states the limits it is about (the `overrides` parameter); every other limit keeps the
generous test values of tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from enclave.app import create_app
from enclave.config import Config
from enclave.services.context import Context
from enclave_client import EnclaveClient
from enclave_client.errors import InvalidCredentials, RateLimited
from tests.conftest import TEST_PASSWORD, World, make_config

API = "/api/v1"


class FakeClock:
    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self.now = start_ms

    def now_ms(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def config(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, overrides: dict[str, Any]
) -> Config:
    url = request.getfixturevalue("pg_schema_url") if backend == "postgres" else ""
    return make_config(tmp_path, url, **overrides)


@pytest.fixture
def clock(ctx: Context) -> FakeClock:
    fake = FakeClock()
    ctx.clock = fake
    return fake


@pytest.fixture
async def from_ip(ctx: Context) -> AsyncIterator[Any]:
    """Clients of the same app seen as coming from other addresses."""
    app = create_app(ctx)
    opened: list[httpx.AsyncClient] = []

    def make(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 4321))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(f"{API}/auth/login", json={"username": username, "password": password})


def _retry_after(resp: httpx.Response) -> int:
    assert resp.status_code == 429, resp.text
    assert resp.json()["error"]["code"] == "rate_limited"
    return int(resp.headers["Retry-After"])


# -- password policy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "password1234",  # on the list once the trailing digits are off
        "Password123!",  # case and trailing punctuation do not help
        "QWERTYUIOPASDF",
        "1q2w3e4r5t6y7u8i",
        "iloveyou2024!!",
        "aaaaaaaaaaaaaa",  # a pattern: too few different characters
        "abababababababab",
        "my name is dave, hi",  # contains the username
    ],
)
async def test_weak_passwords_are_refused(
    client: httpx.AsyncClient, world: World, password: str
) -> None:
    owner = await world.owner()
    resp = await client.post(
        f"{API}/users",
        json={"username": "dave", "password": password, "display_name": "Dave"},
        headers=owner.headers,
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "weak_password"


async def test_a_common_password_is_refused_on_change(
    client: httpx.AsyncClient, world: World
) -> None:
    bob = await world.person("bob")
    resp = await client.post(
        f"{API}/users/me/password",
        json={"current_password": TEST_PASSWORD, "new_password": "Football2024!"},
        headers=bob.headers,
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "weak_password"


# -- login lockout ------------------------------------------------------------------------------

LOCKOUT = {
    "auth.lockout_failures": 5,
    "auth.lockout_base_seconds": 30,
    "auth.lockout_max_seconds": 100,
}


@pytest.mark.parametrize("overrides", [LOCKOUT])
async def test_lockout_backs_off_and_expires(
    world: World, clock: FakeClock, from_ip: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await world.person("bob")
    attacker = from_ip("203.0.113.7")
    for _ in range(5):
        assert (await _login(attacker, "bob", "wrong password!")).status_code == 401
    assert "login lockout started" in caplog.text
    assert "wrong password!" not in caplog.text and "bob" not in caplog.text

    # Locked: even the correct password is refused, and says nothing about being correct.
    assert _retry_after(await _login(attacker, "bob", TEST_PASSWORD)) == 30
    clock.advance(29)
    assert _retry_after(await _login(attacker, "bob", "wrong password!")) == 1
    clock.advance(1)
    # Expired; one more failure locks again for twice as long, then four times, up to the cap.
    assert (await _login(attacker, "bob", "wrong password!")).status_code == 401
    assert _retry_after(await _login(attacker, "bob", TEST_PASSWORD)) == 60
    clock.advance(60)
    assert (await _login(attacker, "bob", "wrong password!")).status_code == 401
    assert _retry_after(await _login(attacker, "bob", TEST_PASSWORD)) == 100  # capped
    clock.advance(100)
    # Once the lock has expired the correct password works, and it clears the pair's count.
    assert (await _login(attacker, "bob", TEST_PASSWORD)).status_code == 200
    assert (await _login(attacker, "bob", "wrong password!")).status_code == 401


@pytest.mark.parametrize("overrides", [LOCKOUT])
async def test_lockout_locks_the_pair_not_the_account(
    world: World, clock: FakeClock, from_ip: Any
) -> None:
    await world.person("bob")
    attacker = from_ip("203.0.113.7")
    for _ in range(5):
        await _login(attacker, "bob", "wrong password!")
    assert _retry_after(await _login(attacker, "bob", TEST_PASSWORD)) == 30
    # Bob, from his own address, is not locked out by someone else's guessing.
    assert (await _login(from_ip("198.51.100.1"), "bob", TEST_PASSWORD)).status_code == 200
    # Nor is the attacker's address locked for other accounts (below its own threshold).
    await world.person("carol")
    assert (await _login(attacker, "carol", TEST_PASSWORD)).status_code == 200


@pytest.mark.parametrize("overrides", [{**LOCKOUT, "auth.lockout_account_failures": 8}])
async def test_the_global_account_lock_spares_known_addresses(
    world: World, clock: FakeClock, from_ip: Any
) -> None:
    await world.person("bob")  # bob logs in from the test client's address: a known one
    for ip, tries in (("203.0.113.1", 5), ("203.0.113.2", 3)):
        for _ in range(tries):
            assert (await _login(from_ip(ip), "bob", "wrong password!")).status_code == 401
    # Eight failures in all: the account is locked for addresses it never logged in from...
    assert _retry_after(await _login(from_ip("203.0.113.3"), "bob", TEST_PASSWORD)) == 30
    # ...but not for bob's usual one.
    assert (
        await world.client.post(
            f"{API}/auth/login", json={"username": "bob", "password": TEST_PASSWORD}
        )
    ).status_code == 200
    clock.advance(30)
    assert (await _login(from_ip("203.0.113.3"), "bob", TEST_PASSWORD)).status_code == 200


@pytest.mark.parametrize("overrides", [{**LOCKOUT, "auth.lockout_ip_failures": 3}])
async def test_an_address_guessing_across_accounts_is_locked(
    world: World, clock: FakeClock, from_ip: Any
) -> None:
    await world.person("bob")
    sprayer = from_ip("203.0.113.9")
    for name in ("alice", "bob", "nobody"):
        assert (await _login(sprayer, name, "Summer2024!")).status_code == 401
    assert _retry_after(await _login(sprayer, "bob", TEST_PASSWORD)) == 30
    assert (await _login(from_ip("198.51.100.1"), "bob", TEST_PASSWORD)).status_code == 200


# -- request rate limits ------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [{"limits.user_per_second": 2.0, "limits.user_burst": 10}])
async def test_per_user_rate_limit(
    client: httpx.AsyncClient, world: World, clock: FakeClock
) -> None:
    bob = await world.person("bob")
    for _ in range(10):
        assert (await client.get(f"{API}/users/me", headers=bob.headers)).status_code == 200
    resp = await client.get(f"{API}/users/me", headers=bob.headers)
    assert _retry_after(resp) == 1
    # Another user is not affected.
    carol = await world.person("carol")
    assert (await client.get(f"{API}/users/me", headers=carol.headers)).status_code == 200
    clock.advance(0.5)
    assert (await client.get(f"{API}/users/me", headers=bob.headers)).status_code == 200


@pytest.mark.parametrize("overrides", [{"limits.login_per_minute": 6.0, "limits.login_burst": 3}])
async def test_login_rate_limit_per_address(world: World, clock: FakeClock, from_ip: Any) -> None:
    await world.person("bob")
    client = from_ip("203.0.113.5")
    for _ in range(3):
        assert (await _login(client, "bob", TEST_PASSWORD)).status_code == 200
    assert _retry_after(await _login(client, "bob", TEST_PASSWORD)) == 10
    assert (await _login(from_ip("203.0.113.6"), "bob", TEST_PASSWORD)).status_code == 200
    clock.advance(10)
    assert (await _login(client, "bob", TEST_PASSWORD)).status_code == 200


@pytest.mark.parametrize("overrides", [{"limits.send_per_second": 1.0, "limits.send_burst": 2}])
async def test_message_send_rate_limit(
    client: httpx.AsyncClient, world: World, clock: FakeClock
) -> None:
    bob = await world.person("bob")
    owner = await world.owner()
    resp = await client.post(
        f"{API}/conversations", json={"kind": "dm", "members": [owner.id]}, headers=bob.headers
    )
    assert resp.status_code == 201, resp.text
    conv = resp.json()["id"]
    url = f"{API}/conversations/{conv}/messages"
    for i in range(2):
        sent = await client.post(
            url, json={"text": f"hi {i}", "client_msg_id": f"m{i}"}, headers=bob.headers
        )
        assert sent.status_code == 201, sent.text
    assert (
        _retry_after(
            await client.post(url, json={"text": "hi", "client_msg_id": "m3"}, headers=bob.headers)
        )
        == 1
    )
    # Reading is not a send.
    assert (await client.get(url, headers=bob.headers)).status_code == 200
    clock.advance(1)
    assert (
        await client.post(url, json={"text": "again", "client_msg_id": "m4"}, headers=bob.headers)
    ).status_code == 201


@pytest.mark.parametrize("overrides", [{"limits.ip_per_second": 1.0, "limits.ip_burst": 3}])
async def test_per_address_rate_limit(clock: FakeClock, from_ip: Any) -> None:
    client = from_ip("203.0.113.11")
    for _ in range(3):
        assert (await client.get("/healthz")).status_code == 200
    assert _retry_after(await client.get("/healthz")) == 1
    assert (await from_ip("203.0.113.12").get("/healthz")).status_code == 200


async def test_429_is_documented_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    doc = (await client.get(f"{API}/openapi.json")).json()
    assert "429" in doc["paths"]["/api/v1/auth/login"]["post"]["responses"]


@pytest.mark.parametrize("overrides", [LOCKOUT])
async def test_the_sdk_reports_the_lockout_with_its_retry_after(
    ctx: Context, world: World, clock: FakeClock
) -> None:
    await world.person("bob")
    transport = httpx.ASGITransport(app=create_app(ctx), client=("203.0.113.20", 4321))
    async with EnclaveClient("http://testserver", transport=transport) as sdk:
        for _ in range(5):
            with pytest.raises(InvalidCredentials):
                await sdk.login("bob", "wrong password!")
        with pytest.raises(RateLimited) as locked:
            await sdk.login("bob", TEST_PASSWORD)
    assert locked.value.code == "rate_limited"
    assert locked.value.retry_after == 30
