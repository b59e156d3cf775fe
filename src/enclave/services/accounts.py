"""Accounts: first-run bootstrap, login and sessions, user administration."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from enclave.crypto import tokens
from enclave.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from enclave.domain.ids import OrgId, UserId, is_valid_id, new_id
from enclave.domain.models import Org, OrgRole, Session, User
from enclave.domain.policy import OrgAction
from enclave.domain.signals import SessionsRevoked
from enclave.services import gates, lockout, validate
from enclave.services.context import Changes, Context, write
from enclave.storage import accounts as store
from enclave.storage.base import Tx, UniqueViolation

_TOUCH_EVERY_MS = 60_000


@dataclass(frozen=True)
class Bootstrap:
    """Printed once on first start: who the owner is and their one-time password."""

    org: Org
    owner: User
    one_time_password: str


@dataclass(frozen=True)
class LoginResult:
    token: str
    user: User


@dataclass(frozen=True)
class Authenticated:
    user: User
    token_hash: bytes


# -- first run --------------------------------------------------------------------------------


async def bootstrap(ctx: Context) -> Bootstrap | None:
    """Create the first organization and its owner with a one-time password, once ever."""
    existing = await ctx.db.read(store.first_org)
    if existing is not None:
        return None
    password = tokens.new_password()
    pw_hash = await ctx.cpu(ctx.passwords.hash, password)
    cfg = ctx.config.org
    username = validate.username(cfg.owner_username)

    def work(ch: Changes) -> Bootstrap | None:
        if store.first_org(ch.tx) is not None:  # another node won the race
            return None
        org = Org(id=OrgId(new_id()), name=cfg.name, created_at=ch.now)
        store.insert_org(ch.tx, org)
        owner = User(
            id=UserId(new_id()),
            org_id=org.id,
            username=username,
            display_name="Administrator",
            role=OrgRole.OWNER,
            is_active=True,
            must_change_password=True,
            created_at=ch.now,
        )
        store.insert_user(ch.tx, owner, pw_hash)
        return Bootstrap(org=org, owner=owner, one_time_password=password)

    return await write(ctx, work)


# -- sessions ---------------------------------------------------------------------------------


async def login(
    ctx: Context, username: str, password: str, user_agent: str = "", ip: str | None = None
) -> LoginResult:
    """Check a password and open a session; wrong name and wrong password look the same.

    `ip` is the client's address, for the lockout (see `services.lockout`): while locked, every
    attempt is refused with `rate_limited` before the password is looked at."""
    name = username.strip(" \t\r\n").lower()
    lockout.check(ctx, name, ip)
    found = (
        await ctx.db.read(lambda tx: store.user_with_hash(tx, name)) if _plausible(name) else None
    )
    stored_hash = found[1] if found else None
    ok = await ctx.cpu(ctx.passwords.verify, stored_hash, password)
    if not ok or found is None or not found[0].is_active:
        lockout.failed(ctx, name, ip)
        raise Unauthenticated("invalid_credentials", "wrong username or password")
    lockout.succeeded(ctx, name, ip)
    user = found[0]
    token = tokens.new_token()
    auth = ctx.config.auth
    # Hashes made under older Argon2 settings are upgraded while the password is at hand.
    upgraded = (
        await ctx.cpu(ctx.passwords.hash, password)
        if stored_hash and ctx.passwords.needs_rehash(stored_hash)
        else None
    )

    def work(ch: Changes) -> None:
        if upgraded is not None:
            store.replace_hash(ch.tx, user.id, stored_hash or "", upgraded)
        session = Session(
            token_hash=tokens.token_hash(token),
            user_id=user.id,
            created_at=ch.now,
            last_used_at=ch.now,
            expires_at=ch.now + auth.session_absolute_days * 86_400_000,
        )
        store.insert_session(ch.tx, session, user_agent[:256])

    await write(ctx, work)
    return LoginResult(token=token, user=user)


async def authenticate(
    ctx: Context, token: str, *, allow_password_change: bool = False
) -> Authenticated:
    """Resolve a bearer token to its active user, enforcing session expiry."""
    if not token.startswith(tokens.TOKEN_PREFIX) or len(token) > 128:
        raise Unauthenticated("unauthenticated", "invalid or expired token")
    digest = tokens.token_hash(token)
    found = await ctx.db.read(lambda tx: store.session_user(tx, digest))
    now = ctx.clock.now_ms()
    idle_ms = ctx.config.auth.session_idle_minutes * 60_000
    if found is None:
        raise Unauthenticated("unauthenticated", "invalid or expired token")
    session, user = found
    if not user.is_active or now >= session.expires_at or now - session.last_used_at >= idle_ms:
        raise Unauthenticated("unauthenticated", "invalid or expired token")
    if user.must_change_password and not allow_password_change:
        raise Forbidden("password_change_required", "set a new password first")
    if now - session.last_used_at >= _TOUCH_EVERY_MS:
        await write(ctx, lambda ch: store.touch_session(ch.tx, digest, ch.now))
    return Authenticated(user=user, token_hash=digest)


async def live_sessions(ctx: Context, token_hashes: list[bytes]) -> set[bytes]:
    """Which of these sessions of open WebSockets are still valid (not logged out, not expired,
    account active); the valid ones count as used. Sockets are re-checked with this so that a
    change made by another process (the CLI) or plain expiry also ends them."""
    idle_ms = ctx.config.auth.session_idle_minutes * 60_000

    def work(ch: Changes) -> set[bytes]:
        valid = set()
        for digest in token_hashes:
            found = store.session_user(ch.tx, digest)
            if found is None:
                continue
            session, user = found
            fresh = ch.now < session.expires_at and ch.now - session.last_used_at < idle_ms
            if fresh and user.is_active and not user.must_change_password:
                valid.add(digest)
                if ch.now - session.last_used_at >= _TOUCH_EVERY_MS:
                    store.touch_session(ch.tx, digest, ch.now)
        return valid

    return await write(ctx, work)


@dataclass(frozen=True)
class SessionInfo:
    """One of the caller's sessions, as they may see it (never the token or its hash)."""

    id: str
    user_agent: str
    created_at: int
    last_used_at: int
    current: bool


def _public_session_id(token_hash: bytes) -> str:
    # Derived from the stored hash, not the hash itself: the lookup key never leaves the server.
    return hashlib.sha256(b"session-id:" + token_hash).hexdigest()[:24]


async def my_sessions(ctx: Context, auth: Authenticated) -> list[SessionInfo]:
    """The caller's open sessions, most recently used first."""
    found = await ctx.db.read(lambda tx: store.user_sessions(tx, auth.user.id))
    return [
        SessionInfo(
            id=_public_session_id(s.token_hash),
            user_agent=agent,
            created_at=s.created_at,
            last_used_at=s.last_used_at,
            current=s.token_hash == auth.token_hash,
        )
        for s, agent in found
    ]


async def revoke_session(ctx: Context, auth: Authenticated, session_id: str) -> None:
    """End one of the caller's own sessions (its live sockets close too)."""

    def work(ch: Changes) -> bytes:
        for session, _ in store.user_sessions(ch.tx, auth.user.id):
            if _public_session_id(session.token_hash) == session_id:
                store.delete_session(ch.tx, session.token_hash)
                return session.token_hash
        raise NotFound("session")

    digest = await write(ctx, work)
    await ctx.bus.publish(SessionsRevoked(auth.user.id, digest))


async def logout(ctx: Context, auth: Authenticated) -> None:
    await write(ctx, lambda ch: store.delete_session(ch.tx, auth.token_hash))
    await ctx.bus.publish(SessionsRevoked(auth.user.id, auth.token_hash))


async def change_password(ctx: Context, auth: Authenticated, current: str, new: str) -> None:
    """Change one's own password; every other session of the account is signed out."""
    user = auth.user
    validate.password(new, min_length=ctx.config.auth.min_password_length, username_=user.username)
    stored = await ctx.db.read(lambda tx: store.password_hash(tx, user.id))
    if not await ctx.cpu(ctx.passwords.verify, stored, current):
        raise Unauthenticated("invalid_credentials", "the current password is wrong")
    if current == new:
        raise InvalidInput("weak_password", "the new password must differ from the current one")
    new_hash = await ctx.cpu(ctx.passwords.hash, new)

    def work(ch: Changes) -> None:
        store.set_password(ch.tx, user.id, new_hash, must_change=False)
        store.delete_user_sessions(ch.tx, user.id, keep=auth.token_hash)

    await write(ctx, work)
    await ctx.bus.publish(SessionsRevoked(user.id, None, keep=auth.token_hash))


# -- administration ---------------------------------------------------------------------------


async def create_user(
    ctx: Context,
    actor: User | None,
    *,
    username: str,
    password: str,
    display_name: str,
    role: OrgRole = OrgRole.MEMBER,
) -> User:
    """Create an account. `actor` None is the operator at the server's shell (the CLI)."""
    if actor is not None:
        gates.require_org(actor, OrgAction.CREATE_USER)
        if role is OrgRole.OWNER and actor.role is not OrgRole.OWNER:
            raise Forbidden("forbidden", "only an owner may create another owner")
    name = validate.username(username)
    shown = validate.line(display_name or name, field="display_name", max_chars=100)
    validate.password(password, min_length=ctx.config.auth.min_password_length, username_=name)
    pw_hash = await ctx.cpu(ctx.passwords.hash, password)

    def work(ch: Changes) -> User:
        org = store.first_org(ch.tx) if actor is None else None
        org_id = actor.org_id if actor is not None else (org.id if org else None)
        if org_id is None:
            raise Conflict("not_initialized", "run `enclave init` first")
        user = User(
            id=UserId(new_id()),
            org_id=org_id,
            username=name,
            display_name=shown,
            role=role,
            is_active=True,
            must_change_password=False,
            created_at=ch.now,
        )
        try:
            store.insert_user(ch.tx, user, pw_hash)
        except UniqueViolation:
            raise Conflict("username_taken", f"username {name!r} is taken") from None
        return user

    return await write(ctx, work)


async def list_users(
    ctx: Context, actor: User | None, *, include_inactive: bool, after: str, limit: int
) -> list[User]:
    if actor is not None and include_inactive:
        gates.require_org(actor, OrgAction.LIST_INACTIVE_USERS)

    def work(tx: Tx) -> list[User]:
        org_id = actor.org_id if actor else _operator_org(tx)
        return store.users_in_org(
            tx, org_id, include_inactive=include_inactive, after=after, limit=limit
        )

    return await ctx.db.read(work)


async def get_user(ctx: Context, actor: User, user_id: str) -> User:
    return await ctx.db.read(lambda tx: gates.org_user(tx, actor, user_id))


async def set_active(ctx: Context, actor: User | None, target: str, *, active: bool) -> User:
    """Deactivate (signing out every session) or reactivate an account."""
    if actor is not None:
        gates.require_org(actor, OrgAction.DEACTIVATE_USER)

    def work(ch: Changes) -> User:
        if actor is not None:
            user = gates.org_user(ch.tx, actor, target)
            if user.role is OrgRole.OWNER and actor.role is not OrgRole.OWNER:
                raise Forbidden("forbidden", "only an owner may deactivate an owner")
        else:
            by_id = store.user_by_id(ch.tx, target) if is_valid_id(target) else None
            found = by_id or _by_name(ch.tx, target)
            if found is None:
                raise NotFound("user")
            user = found
        demoting_owner = not active and user.role is OrgRole.OWNER and user.is_active
        if demoting_owner and store.count_owners(ch.tx, user.org_id) <= 1:
            raise Conflict("last_owner", "the last owner cannot be deactivated")
        store.set_active(ch.tx, user.id, active)
        if not active:
            store.delete_user_sessions(ch.tx, user.id)
        return replace(user, is_active=active)

    changed = await write(ctx, work)
    if not active:
        await ctx.bus.publish(SessionsRevoked(changed.id, None))
    return changed


async def reset_password(ctx: Context, username: str, password: str) -> User:
    """Operator reset from the CLI: sets a password and signs the account out everywhere."""
    found = await ctx.db.read(lambda tx: _by_name(tx, username))
    if found is None:
        raise NotFound("user")
    validate.password(
        password, min_length=ctx.config.auth.min_password_length, username_=found.username
    )
    pw_hash = await ctx.cpu(ctx.passwords.hash, password)

    def work(ch: Changes) -> User:
        store.set_password(ch.tx, found.id, pw_hash, must_change=False)
        store.delete_user_sessions(ch.tx, found.id)
        return replace(found, must_change_password=False)

    changed = await write(ctx, work)
    await ctx.bus.publish(SessionsRevoked(changed.id, None))
    return changed


def _plausible(username: str) -> bool:
    try:
        validate.username(username)
    except InvalidInput:
        return False
    return True


def _by_name(tx: Tx, username: str) -> User | None:
    if not _plausible(username):
        return None
    found = store.user_with_hash(tx, username.strip(" \t\r\n").lower())
    return found[0] if found else None


def _operator_org(tx: Tx) -> OrgId:
    org = store.first_org(tx)
    if org is None:
        raise Conflict("not_initialized", "run `enclave init` first")
    return org.id
