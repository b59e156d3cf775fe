"""Login lockout with exponential backoff that an attacker cannot use to lock a victim out.

Documented for operators under `auth` in docs/config.md.

Three failure counters, each with its own threshold (`auth.lockout_*`):

- **pair** (account, address): the usual lock. Guessing from one address locks only that
  address out of that account, so an attacker cannot lock the victim out of their own devices.
- **address**: one address guessing across many accounts (spraying) is locked out of all of them.
- **account**: a much higher threshold across all addresses (a distributed guess). Addresses
  from which the account logged in successfully within `auth.lockout_trusted_days` are exempt,
  so even this lock never keeps the owner out of their usual devices.

Once a counter reaches its threshold, the key is locked for `lockout_base_seconds`, doubling
with every further failure up to `lockout_max_seconds`. Attempts refused during a lock do not
count and their password is not checked (a correct one is refused too: the lock is no oracle),
so a lock always expires; a counter starts again after `lockout_window_minutes` without failure.

Failures are counted only once a password was checked, so parallel guesses could all pass
`check` before the first one is counted. `begin` closes that gap: it holds one in-flight slot
per (account, address) pair, and at most as many per address as its failure threshold, while
the password is checked, so concurrent
guesses wait their turn (they get `rate_limited` with Retry-After: 1) and each one is counted
before the next is tried.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

from enclave.domain.errors import RateLimited
from enclave.domain.shared import Failures
from enclave.services.context import Context

log = logging.getLogger("enclave.security")

__all__ = ["Attempt", "begin", "check", "failed", "succeeded"]

# Concurrent password checks allowed per (account, address) pair; per address it is the
# address's failure threshold, so that an office behind one NAT address can log in at once.
_PAIR_IN_FLIGHT = 1
_SLOT_TTL_MS = 30_000


@dataclass(frozen=True)
class _Keys:
    pair: str
    ip: str
    account: str
    trusted: str


def _keys(username: str, ip: str | None) -> _Keys:
    # The key of an account is a digest of its name, so the limiter's store (Redis) holds
    # no usernames; the name is normalized by the caller whether or not the account exists.
    name = hashlib.sha256(username.encode()).hexdigest()[:32]
    addr = ip or "-"
    return _Keys(
        pair=f"login:pair:{name}:{addr}",
        ip=f"login:ip:{addr}",
        account=f"login:acct:{name}",
        trusted=f"login:trusted:{name}:{addr}",
    )


def _delay_ms(ctx: Context, count: int, threshold: int) -> int:
    """The lock after `count` failures: none below the threshold, then doubling up to the cap."""
    if count < threshold:
        return 0
    auth = ctx.config.auth
    doublings = min(count - threshold, 32)
    seconds: int = auth.lockout_base_seconds << doublings
    return min(seconds, auth.lockout_max_seconds) * 1000


def _remaining_ms(ctx: Context, found: Failures, threshold: int, now: int) -> int:
    return max(0, found.last_ms + _delay_ms(ctx, found.count, threshold) - now)


async def _counters(ctx: Context, keys: _Keys, now: int) -> list[tuple[str, int]]:
    auth = ctx.config.auth
    counters = [(keys.pair, auth.lockout_failures), (keys.ip, auth.lockout_ip_failures)]
    if not await ctx.limiter.marked(keys.trusted, now_ms=now):
        counters.append((keys.account, auth.lockout_account_failures))
    return counters


async def check(ctx: Context, username: str, ip: str | None) -> None:
    """Raise RateLimited if a login for `username` from `ip` is locked now."""
    now = ctx.clock.now_ms()
    window = ctx.config.auth.lockout_window_minutes * 60_000
    keys = _keys(username, ip)
    wait = 0
    for key, limit in await _counters(ctx, keys, now):
        found = await ctx.limiter.failures(key, window_ms=window, now_ms=now)
        wait = max(wait, _remaining_ms(ctx, found, limit, now))
    if wait:
        raise RateLimited(
            "rate_limited",
            "too many failed logins; try again later",
            retry_after_s=math.ceil(wait / 1000),
        )


class Attempt:
    """The in-flight slots of one login attempt; `end` gives them back (once)."""

    def __init__(self, ctx: Context, keys: list[str]) -> None:
        self._ctx = ctx
        self._keys = keys

    async def end(self) -> None:
        keys, self._keys = self._keys, []
        for key in keys:
            await self._ctx.limiter.release(key)


async def begin(ctx: Context, username: str, ip: str | None) -> Attempt:
    """`check`, then take the in-flight slots of this attempt; call `end` once it is decided."""
    await check(ctx, username, ip)
    now = ctx.clock.now_ms()
    keys = _keys(username, ip)
    slots = [
        (f"{keys.pair}:busy", _PAIR_IN_FLIGHT),
        (f"{keys.ip}:busy", ctx.config.auth.lockout_ip_failures),
    ]
    taken = Attempt(ctx, [])
    for key, limit in slots:
        if not await ctx.limiter.acquire(key, limit=limit, ttl_ms=_SLOT_TTL_MS, now_ms=now):
            await taken.end()
            raise RateLimited(
                "rate_limited", "another login attempt is in progress", retry_after_s=1
            )
        taken = Attempt(ctx, [*taken._keys, key])
    return taken


async def failed(ctx: Context, username: str, ip: str | None) -> None:
    """Count a failed login; log a warning when it starts a lockout."""
    now = ctx.clock.now_ms()
    window = ctx.config.auth.lockout_window_minutes * 60_000
    keys = _keys(username, ip)
    kinds = {keys.pair: "account from this address", keys.ip: "address", keys.account: "account"}
    for key, limit in await _counters(ctx, keys, now):
        found = await ctx.limiter.add_failure(key, window_ms=window, now_ms=now)
        if found.count == limit:
            # No password, and the account only as its key digest: logs must hold no secrets.
            log.warning(
                "login lockout started: %s (key %s, %d failures, ip %s)",
                kinds[key],
                key.split(":", 2)[2],
                found.count,
                ip or "-",
            )


async def succeeded(ctx: Context, username: str, ip: str | None) -> None:
    """A correct password: forget the pair's failures and trust the address for the account."""
    now = ctx.clock.now_ms()
    keys = _keys(username, ip)
    await ctx.limiter.clear(keys.pair)
    trusted_ms = ctx.config.auth.lockout_trusted_days * 86_400_000
    if trusted_ms:
        await ctx.limiter.mark(keys.trusted, until_ms=now + trusted_ms)
