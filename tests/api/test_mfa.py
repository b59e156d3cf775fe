"""TOTP MFA through the REST API: enrolment, log-in with a code or a recovery code, replay and
clock drift, the lockout counting bad codes, disabling, and MFA required by the organization.

Time is a fake clock on the service context (starting at the real time, so that sessions made
before it was set stay fresh), and codes are computed with pyotp for chosen instants."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from enclave.config import Config
from enclave.domain.audit import AuditEntry
from enclave.services.context import Context
from enclave.storage import audit as audit_store
from tests.api.helpers import API, code
from tests.conftest import TEST_PASSWORD, Person, World, make_config

STEP_MS = 30_000


class FakeClock:
    def __init__(self) -> None:
        # The middle of a 30-second step: codes "now" are unambiguous.
        self.now = (time.time_ns() // 1_000_000 // STEP_MS) * STEP_MS + STEP_MS // 2

    def now_ms(self) -> int:
        return self.now

    def advance_steps(self, steps: int) -> None:
        self.now += steps * STEP_MS


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def config(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, overrides: dict[str, Any]
) -> Config:
    url = request.getfixturevalue("pg_schema_url") if backend == "postgres" else ""
    return make_config(tmp_path, url, **overrides)


@pytest.fixture(autouse=True)
def clock(ctx: Context) -> FakeClock:
    fake = FakeClock()
    ctx.clock = fake
    return fake


def otp(secret: str, at_ms: int) -> str:
    return str(pyotp.TOTP(secret).at(at_ms // 1000))


async def login(
    client: httpx.AsyncClient, username: str, password: str = TEST_PASSWORD, **extra: str
) -> httpx.Response:
    return await client.post(
        f"{API}/auth/login", json={"username": username, "password": password, **extra}
    )


async def enrol(client: httpx.AsyncClient, who: Person, clock: FakeClock) -> tuple[str, list[str]]:
    """Enrol `who`; return the secret and the recovery codes. Leaves the clock one step on, so
    that the next code is not the one used to confirm."""
    started = await client.post(f"{API}/users/me/mfa/totp", headers=who.headers)
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    confirmed = await client.post(
        f"{API}/users/me/mfa/totp/confirm",
        json={"code": otp(secret, clock.now)},
        headers=who.headers,
    )
    assert confirmed.status_code == 200, confirmed.text
    clock.advance_steps(1)
    return secret, confirmed.json()["recovery_codes"]


async def audit_log(ctx: Context) -> list[AuditEntry]:
    return await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 100_000))


def actions(entries: list[AuditEntry], action: str, outcome: str = "success") -> list[AuditEntry]:
    return [e for e in entries if e.action == action and e.outcome == outcome]


async def test_enrol_then_log_in_with_a_code(
    world: World, client: httpx.AsyncClient, clock: FakeClock, ctx: Context
) -> None:
    bob = await world.person("bob")
    status = await client.get(f"{API}/users/me/mfa", headers=bob.headers)
    assert status.json() == {
        "enrolled": False,
        "pending": False,
        "confirmed_at": None,
        "recovery_codes_left": 0,
        "required": False,
    }
    started = await client.post(f"{API}/users/me/mfa/totp", headers=bob.headers)
    body = started.json()
    secret = body["secret"]
    assert len(secret) == 32
    assert body["otpauth_uri"].startswith("otpauth://totp/Enclave%20%28My%20Organization%29:bob?")
    assert "issuer=Enclave" in body["otpauth_uri"]
    assert body["qr_svg"].startswith("data:image/svg+xml")
    pending = (await client.get(f"{API}/users/me/mfa", headers=bob.headers)).json()
    assert pending["pending"] and not pending["enrolled"]
    # Not on yet: a log-in needs no code.
    assert (await login(client, "bob")).status_code == 200

    wrong = await client.post(
        f"{API}/users/me/mfa/totp/confirm", json={"code": "000000"}, headers=bob.headers
    )
    if otp(secret, clock.now) != "000000":
        assert code(wrong) == (422, "invalid_mfa_code")
    confirmed = await client.post(
        f"{API}/users/me/mfa/totp/confirm",
        json={"code": otp(secret, clock.now)},
        headers=bob.headers,
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    on = (await client.get(f"{API}/users/me/mfa", headers=bob.headers)).json()
    assert on["enrolled"] and on["recovery_codes_left"] == 10 and on["confirmed_at"] == clock.now
    again = await client.post(f"{API}/users/me/mfa/totp", headers=bob.headers)
    assert code(again) == (409, "mfa_already_enrolled")

    # Password right, no code: mfa_required. Password wrong: invalid_credentials as before.
    assert code(await login(client, "bob")) == (401, "mfa_required")
    assert code(await login(client, "bob", "wrong password")) == (401, "invalid_credentials")
    assert code(await login(client, "bob", "wrong", otp=otp(secret, clock.now))) == (
        401,
        "invalid_credentials",
    )
    # The confirming code's step is used up: the same code again is refused.
    assert code(await login(client, "bob", otp=otp(secret, clock.now))) == (
        401,
        "invalid_credentials",
    )
    clock.advance_steps(1)
    ok = await login(client, "bob", otp=otp(secret, clock.now))
    assert ok.status_code == 200, ok.text
    assert ok.json()["user"]["username"] == "bob"
    # Replay of the code just used, and a code of an older step: refused.
    assert code(await login(client, "bob", otp=otp(secret, clock.now))) == (
        401,
        "invalid_credentials",
    )
    clock.advance_steps(1)
    assert code(await login(client, "bob", otp=otp(secret, clock.now - 2 * STEP_MS))) == (
        401,
        "invalid_credentials",
    )
    # Spaces as apps show them are fine.
    spaced = otp(secret, clock.now)
    ok = await login(client, "bob", otp=f"{spaced[:3]} {spaced[3:]}")
    assert ok.status_code == 200, ok.text

    entries = await audit_log(ctx)
    assert [e.details for e in actions(entries, "mfa.enrolled")] == [{"method": "totp"}]
    logins = actions(entries, "auth.login")
    assert [e.details["method"] for e in logins if e.actor_id == bob.id][-2:] == ["totp", "totp"]
    failures = actions(entries, "auth.login", "failure")
    reasons = [e.details["reason"] for e in failures]
    assert reasons.count("bad_otp") == 3 and reasons.count("wrong_password") == 2
    assert all(e.target_id == "bob" and e.target_type == "username" for e in failures)
    for entry in entries:  # no code, secret or password in any entry
        text = repr(entry)
        assert secret not in text and TEST_PASSWORD not in text
        assert not any(c in text for c in codes)


async def test_one_step_of_drift_is_accepted_two_are_not(
    world: World, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    bob = await world.person("bob")
    secret, _ = await enrol(client, bob, clock)
    clock.advance_steps(10)
    for offset in (-1, 0, 1):  # each a later step than the last one used
        resp = await login(client, "bob", otp=otp(secret, clock.now + offset * STEP_MS))
        assert resp.status_code == 200, (offset, resp.text)
    clock.advance_steps(10)
    for offset in (-2, 2):
        resp = await login(client, "bob", otp=otp(secret, clock.now + offset * STEP_MS))
        assert code(resp) == (401, "invalid_credentials"), offset


async def test_recovery_codes_log_in_once_and_can_be_regenerated(
    world: World, client: httpx.AsyncClient, clock: FakeClock, ctx: Context
) -> None:
    bob = await world.person("bob")
    secret, codes = await enrol(client, bob, clock)
    first = codes[0]
    ok = await login(client, "bob", recovery_code=first.upper().replace("-", " "))
    assert ok.status_code == 200, ok.text
    assert code(await login(client, "bob", recovery_code=first)) == (401, "invalid_credentials")
    assert code(await login(client, "bob", recovery_code="not-a-code")) == (
        401,
        "invalid_credentials",
    )
    # The otp field takes a recovery code too (one field in simple clients).
    assert (await login(client, "bob", otp=codes[1])).status_code == 200
    status = (await client.get(f"{API}/users/me/mfa", headers=bob.headers)).json()
    assert status["recovery_codes_left"] == 8

    bad = await client.post(
        f"{API}/users/me/mfa/recovery-codes", json={"code": codes[0]}, headers=bob.headers
    )
    assert code(bad) == (422, "invalid_mfa_code")
    fresh = await client.post(
        f"{API}/users/me/mfa/recovery-codes",
        json={"code": otp(secret, clock.now)},
        headers=bob.headers,
    )
    assert fresh.status_code == 200, fresh.text
    new_codes = fresh.json()["recovery_codes"]
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    assert code(await login(client, "bob", recovery_code=codes[5])) == (401, "invalid_credentials")
    assert (await login(client, "bob", recovery_code=new_codes[5])).status_code == 200

    entries = await audit_log(ctx)
    used = actions(entries, "mfa.recovery_code_used")
    assert [e.details["codes_left"] for e in used] == [9, 8, 9]
    assert len(actions(entries, "mfa.recovery_codes_regenerated")) == 1
    assert [
        e.details["verified_with"] for e in actions(entries, "mfa.recovery_codes_regenerated")
    ] == ["totp"]
    reasons = [e.details["reason"] for e in actions(entries, "auth.login", "failure")]
    assert reasons.count("bad_recovery_code") == 3


async def test_disabling_needs_the_password_and_a_code(
    world: World, client: httpx.AsyncClient, clock: FakeClock, ctx: Context
) -> None:
    bob = await world.person("bob")
    url = f"{API}/users/me/mfa"
    not_on = await client.request(
        "DELETE", url, json={"password": TEST_PASSWORD, "code": "123456"}, headers=bob.headers
    )
    assert code(not_on) == (409, "mfa_not_enrolled")
    secret, codes = await enrol(client, bob, clock)
    wrong_pw = await client.request(
        "DELETE",
        url,
        json={"password": "nope", "code": otp(secret, clock.now)},
        headers=bob.headers,
    )
    assert code(wrong_pw) == (401, "invalid_credentials")
    wrong_code = await client.request(
        "DELETE", url, json={"password": TEST_PASSWORD, "code": "12345x"}, headers=bob.headers
    )
    assert code(wrong_code) == (422, "invalid_mfa_code")
    still = (await client.get(url, headers=bob.headers)).json()
    assert still["enrolled"]
    off = await client.request(
        "DELETE", url, json={"password": TEST_PASSWORD, "code": codes[3]}, headers=bob.headers
    )
    assert off.status_code == 204, off.text
    assert (await client.get(url, headers=bob.headers)).json()["enrolled"] is False
    assert (await login(client, "bob")).status_code == 200
    entries = await audit_log(ctx)
    disabled = actions(entries, "mfa.disabled")
    assert [e.details for e in disabled] == [{"verified_with": "recovery_code"}]
    assert disabled[0].target_id == bob.id and disabled[0].actor_id == bob.id
    assert len(actions(entries, "mfa.code_rejected", "failure")) == 1


@pytest.mark.parametrize(
    "overrides",
    [{"auth.lockout_failures": 3, "auth.lockout_base_seconds": 60}],
)
async def test_bad_codes_count_as_failed_logins(
    world: World, client: httpx.AsyncClient, clock: FakeClock, ctx: Context
) -> None:
    bob = await world.person("bob")
    secret, _ = await enrol(client, bob, clock)
    good = otp(secret, clock.now)
    wrong = [c for c in ("111111", "222222", "333333", "444444") if c != good][:3]
    for guess in wrong:
        assert code(await login(client, "bob", otp=guess)) == (401, "invalid_credentials")
    # Locked now: even the right code is refused without being looked at (and is not used up).
    locked = await login(client, "bob", otp=good)
    assert code(locked) == (429, "rate_limited")
    assert int(locked.headers["retry-after"]) >= 1
    clock.now += 61_000
    ok = await login(client, "bob", otp=otp(secret, clock.now))
    assert ok.status_code == 200, ok.text
    reasons = [e.details["reason"] for e in actions(await audit_log(ctx), "auth.login", "failure")]
    assert reasons.count("bad_otp") == 3 and reasons.count("locked_out") == 1


async def test_an_org_that_requires_mfa_limits_everyone_without_it(
    world: World, client: httpx.AsyncClient, clock: FakeClock, ctx: Context
) -> None:
    owner = await world.owner()
    bob = await world.person("bob")
    admin = await world.person("ada", role="admin")
    url = f"{API}/org/settings"
    assert code(await client.get(url, headers=bob.headers)) == (403, "forbidden")
    assert code(await client.patch(url, json={"require_mfa": True}, headers=bob.headers)) == (
        403,
        "forbidden",
    )
    assert (await client.get(url, headers=admin.headers)).json()["require_mfa"] is False
    changed = await client.patch(url, json={"require_mfa": True}, headers=admin.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["require_mfa"] is True

    # Without MFA: everything but /users/me, MFA, log-out and sessions answers 403.
    for who in (bob, admin, owner):
        blocked = await client.get(f"{API}/conversations", headers=who.headers)
        assert code(blocked) == (403, "mfa_enrollment_required")
    assert code(await client.get(url, headers=admin.headers)) == (403, "mfa_enrollment_required")
    assert (await client.get(f"{API}/users/me", headers=bob.headers)).status_code == 200
    assert (await client.get(f"{API}/users/me/sessions", headers=bob.headers)).status_code == 200
    status = (await client.get(f"{API}/users/me/mfa", headers=bob.headers)).json()
    assert status["required"] is True and status["enrolled"] is False
    # Logging in still works (so that one can enrol), and the new session is limited too.
    fresh = await login(client, "bob")
    assert fresh.status_code == 200, fresh.text
    fresh_headers = {"Authorization": f"Bearer {fresh.json()['token']}"}
    assert code(await client.get(f"{API}/users", headers=fresh_headers)) == (
        403,
        "mfa_enrollment_required",
    )

    await enrol(client, bob, clock)
    assert (await client.get(f"{API}/conversations", headers=bob.headers)).status_code == 200
    assert (await client.get(f"{API}/users", headers=fresh_headers)).status_code == 200
    assert code(await client.get(f"{API}/conversations", headers=owner.headers)) == (
        403,
        "mfa_enrollment_required",
    )
    assert (await client.post(f"{API}/auth/logout", headers=owner.headers)).status_code == 204

    entries = actions(await audit_log(ctx), "org.settings_changed")
    assert len(entries) == 1
    assert entries[0].actor_id == admin.id and entries[0].target_type == "org"
    assert entries[0].details == {"changed": {"require_mfa": {"from": False, "to": True}}}


@pytest.mark.parametrize(
    "body",
    [
        {"code": ""},
        {"code": "1" * 65},
        {"code": 123456},
        {"code": None},
        {},
        {"code": "123456", "extra": 1},
    ],
)
async def test_malformed_codes_are_refused_with_stable_codes(
    world: World, client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    bob = await world.person("bob")
    await client.post(f"{API}/users/me/mfa/totp", headers=bob.headers)
    for path in ("/users/me/mfa/totp/confirm", "/users/me/mfa/recovery-codes"):
        resp = await client.post(f"{API}{path}", json=body, headers=bob.headers)
        assert code(resp) == (422, "validation_error"), (path, resp.text)
    too_long = await login(client, "bob", otp="1" * 65)
    assert code(too_long) == (422, "validation_error")
