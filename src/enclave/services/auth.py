"""Authentication: login (with the lockout and the second factor), logout, and resolving a
session token to its account (`authenticate`, and `live_states` for open WebSockets)."""

from __future__ import annotations

from dataclasses import dataclass

from enclave.crypto import tokens
from enclave.domain.errors import Forbidden, RateLimited, Unauthenticated
from enclave.domain.models import Session, User
from enclave.domain.signals import SessionsRevoked
from enclave.services import audit, lockout, mfa, validate
from enclave.services.context import Changes, Context, write
from enclave.storage import accounts as store
from enclave.storage import mfa as mfa_store

_TOUCH_EVERY_MS = 60_000


@dataclass(frozen=True)
class LoginResult:
    token: str
    user: User


@dataclass(frozen=True)
class Authenticated:
    user: User
    token_hash: bytes


async def login(
    ctx: Context,
    username: str,
    password: str,
    user_agent: str = "",
    ip: str | None = None,
    *,
    otp: str | None = None,
    recovery_code: str | None = None,
) -> LoginResult:
    """Check a password (and the second factor of an account with MFA) and open a session;
    wrong name and wrong password look the same.

    `ip` is the client's address, for the lockout (see `services.lockout`): while locked, every
    attempt is refused with `rate_limited` before the password is looked at. With MFA on and the
    password right, a missing code answers `mfa_required`; a wrong code answers like a wrong
    password and counts as a failure. Every outcome but `mfa_required` is audited."""
    name = username.strip(" \t\r\n").lower()
    try:
        attempt = await lockout.begin(ctx, name, ip)
    except RateLimited:
        await _login_failed(ctx, name, ip, None, "locked_out")
        raise
    try:
        return await _checked_login(ctx, name, password, user_agent, ip, otp, recovery_code)
    finally:
        await attempt.end()


async def _checked_login(
    ctx: Context,
    name: str,
    password: str,
    user_agent: str,
    ip: str | None,
    otp: str | None,
    recovery_code: str | None,
) -> LoginResult:
    """`login` once this attempt holds its lockout slots."""
    found = (
        await ctx.db.read(lambda tx: store.user_with_hash(tx, name))
        if validate.is_username(name)
        else None
    )
    stored_hash = found[1] if found else None
    ok = await ctx.cpu(ctx.passwords.verify, stored_hash, password)
    if not ok or found is None or not found[0].is_active:
        await lockout.failed(ctx, name, ip)
        reason = "unknown_user" if found is None else "wrong_password" if not ok else "inactive"
        await _login_failed(ctx, name, ip, found[0] if found else None, reason)
        raise Unauthenticated("invalid_credentials", "wrong username or password")
    user = found[0]
    has_mfa = await ctx.db.read(lambda tx: mfa_store.confirmed_at(tx, user.id)) is not None
    if has_mfa and not otp and not recovery_code:
        # Only now that the password is known to be right: the code is the missing piece.
        raise Unauthenticated("mfa_required", "enter the code of your authenticator app")
    token = tokens.new_token()
    auth = ctx.config.auth
    # Hashes made under older Argon2 settings are upgraded while the password is at hand.
    upgraded = (
        await ctx.cpu(ctx.passwords.hash, password)
        if stored_hash and ctx.passwords.needs_rehash(stored_hash)
        else None
    )

    def work(ch: Changes) -> str | None:
        method = "password"
        if has_mfa:
            second = mfa.second_factor(ctx, ch, user, otp, recovery_code, ip=ip)
            if second is None:
                reason = "bad_otp" if otp else "bad_recovery_code"
                _record_login_failure(ctx, ch, name, ip, user, reason)
                return reason
            method = second
        if upgraded is not None:
            store.replace_hash(ch.tx, user.id, stored_hash or "", upgraded)
        session = Session(
            token_hash=tokens.token_hash(token),
            user_id=user.id,
            created_at=ch.now,
            last_used_at=ch.now,
            expires_at=ch.now + auth.session_absolute_days * 86_400_000,
            user_agent=user_agent[:256],
            last_ip=ip,
        )
        store.insert_session(ch.tx, session)
        audit.record(
            ctx,
            ch,
            "auth.login",
            audit.Actor.of(user, ip),
            target=audit.Target.user(user),
            details={"method": method},
        )
        return None

    if await write(ctx, work) is not None:
        await lockout.failed(ctx, name, ip)
        raise Unauthenticated("invalid_credentials", "wrong or already used code")
    await lockout.succeeded(ctx, name, ip)
    return LoginResult(token=token, user=user)


def _record_login_failure(
    ctx: Context, ch: Changes, name: str, ip: str | None, user: User | None, reason: str
) -> None:
    # The attempted name, normalized, printable only (PostgreSQL refuses NUL in text) and cut
    # to a sane length; never the password.
    shown = "".join(c for c in name if c.isprintable())[:64]
    audit.record(
        ctx,
        ch,
        "auth.login",
        audit.Actor(org_id=user.org_id if user else None, ip=ip),
        target=audit.Target("username", shown),
        outcome="failure",
        details={"reason": reason},
    )


async def _login_failed(
    ctx: Context, name: str, ip: str | None, user: User | None, reason: str
) -> None:
    await write(ctx, lambda ch: _record_login_failure(ctx, ch, name, ip, user, reason))


def _set_up_step(password: bool, mfa_missing: bool, terms_pending: bool) -> str | None:
    """The first set-up step an account must still finish, as the error code `authenticate`
    raises for it (in the same order)."""
    if password:
        return "password_change_required"
    if mfa_missing:
        return "mfa_enrollment_required"
    if terms_pending:
        return "terms_acceptance_required"
    return None


async def authenticate(
    ctx: Context,
    token: str,
    *,
    allow_password_change: bool = False,
    allow_mfa_enrollment: bool = False,
    allow_terms_pending: bool = False,
    ip: str | None = None,
) -> Authenticated:
    """Resolve a bearer token to its active user, enforcing session expiry.

    An account that must still set a new password gets `password_change_required`, one whose
    organization requires MFA and that has none yet `mfa_enrollment_required`, and one that has
    not accepted its organization's current terms of use `terms_acceptance_required` (checked in
    this order), unless the caller allows that state (the few endpoints that let the person get
    out of it)."""
    if not token.startswith(tokens.TOKEN_PREFIX) or len(token) > 128:
        raise Unauthenticated("unauthenticated", "invalid or expired token")
    digest = tokens.token_hash(token)
    found = await ctx.db.read(lambda tx: store.session_state(tx, digest))
    now = ctx.clock.now_ms()
    idle_ms = ctx.config.auth.session_idle_minutes * 60_000
    if found is None:
        raise Unauthenticated("unauthenticated", "invalid or expired token")
    session, user, mfa_missing, terms_pending = found
    if not user.is_active or now >= session.expires_at or now - session.last_used_at >= idle_ms:
        raise Unauthenticated("unauthenticated", "invalid or expired token")
    if user.must_change_password and not allow_password_change:
        raise Forbidden("password_change_required", "set a new password first")
    if mfa_missing and not allow_mfa_enrollment:
        raise Forbidden("mfa_enrollment_required", "your organization requires MFA: enrol first")
    if terms_pending and not allow_terms_pending:
        raise Forbidden(
            "terms_acceptance_required", "accept your organization's terms of use first"
        )
    moved = ip is not None and ip != session.last_ip
    if moved or now - session.last_used_at >= _TOUCH_EVERY_MS:
        await write(ctx, lambda ch: store.touch_session(ch.tx, digest, ch.now, ip))
    return Authenticated(user=user, token_hash=digest)


@dataclass(frozen=True)
class LiveState:
    """What the session of an open WebSocket allows now."""

    user: User
    """The account as stored now (role, department, ...)."""
    set_up_step: str | None
    """`password_change_required`, `mfa_enrollment_required` or `terms_acceptance_required`
    when the account must finish that first (the socket must not serve it until then)."""


async def live_states(ctx: Context, token_hashes: list[bytes]) -> dict[bytes, LiveState]:
    """The current state of the sessions of open WebSockets. Sessions that ended (logged out,
    expired, account deactivated) are absent. Sockets are re-checked with this regularly (so
    that a change made by another process such as the CLI, or plain expiry, also reaches them)
    and at once on `AccessChanged`; an open socket is a session in use, so the usable ones
    count as used."""
    idle_ms = ctx.config.auth.session_idle_minutes * 60_000

    def work(ch: Changes) -> dict[bytes, LiveState]:
        states: dict[bytes, LiveState] = {}
        for digest in token_hashes:
            found = store.session_state(ch.tx, digest)
            if found is None:
                continue
            session, user, mfa_missing, terms_pending = found
            fresh = ch.now < session.expires_at and ch.now - session.last_used_at < idle_ms
            if not (fresh and user.is_active):
                continue
            step = _set_up_step(user.must_change_password, mfa_missing, terms_pending)
            states[digest] = LiveState(user, step)
            if step is None and ch.now - session.last_used_at >= _TOUCH_EVERY_MS:
                store.touch_session(ch.tx, digest, ch.now)
        return states

    return await write(ctx, work)


async def logout(ctx: Context, auth: Authenticated, ip: str | None = None) -> None:
    """End the caller's session (its live sockets close too)."""

    def work(ch: Changes) -> None:
        store.delete_session(ch.tx, auth.token_hash)
        audit.record(
            ctx,
            ch,
            "auth.logout",
            audit.Actor.of(auth.user, ip),
            target=audit.Target.user(auth.user),
        )

    await write(ctx, work)
    await ctx.bus.publish(SessionsRevoked(auth.user.id, auth.token_hash))
